"""Evaluation: ranking metrics, re-ranking, feature extraction, pictures."""

from training.evaluation.metrics import RankMetrics, evaluate_rank, pairwise_distance, query_expansion
from training.evaluation.rerank import re_ranking

__all__ = ["RankMetrics", "evaluate_rank", "pairwise_distance", "query_expansion", "re_ranking"]
