"""Training: S2CNet on GAICD or FCDB through one loop (:func:`.loop.train` with :class:`.options.TrainOptions`),
and the geometry prior on GAICD ratings (:mod:`.prior`)."""
