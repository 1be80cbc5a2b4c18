"""Losses for learning to choose crops."""
import torch
import torch.nn.functional as F
from torch import Tensor


def listwise_loss(scores: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """Cross-entropy between the candidates' softmax of ``scores`` and the softmax of ``targets /
    temperature`` (e.g. each candidate's IoU with the human crop): the top-1 probability of the best
    candidates is pushed up, more sharply the lower the temperature."""
    return -(torch.softmax(targets / temperature, 0) * torch.log_softmax(scores, 0)).sum()


def pair_loss(first: Tensor, second: Tensor, votes: Tensor) -> Tensor:
    """Logistic loss on judged crop pairs: ``votes`` (P, 2) people's votes for each side; the side with
    more votes should score higher, weighted by how clear the vote was (|v0 - v1| / (v0 + v1)); ties
    weigh nothing."""
    margin = (votes[:, 0] - votes[:, 1]) / votes.sum(1).clamp(min=1)
    return (F.softplus(-(first - second) * margin.sign()) * margin.abs()).mean()
