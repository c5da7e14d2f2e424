"""What a user tells us to be matched well: topics and seniority."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

# Ordered: the matching policy prefers partners whose rank is closest.
SENIORITY_LEVELS = ("intern", "junior", "mid", "senior", "staff", "principal")
MAX_TOPICS = 10
MAX_TOPIC_LENGTH = 40


def seniority_rank(level: str | None) -> int | None:
    """The rank of a known level (0 = intern), None when unknown or absent."""
    if level is None:
        return None
    try:
        return SENIORITY_LEVELS.index(level)
    except ValueError:
        return None


def normalize_topics(topics: list[str]) -> list[str]:
    """Topics compared case- and space-insensitively, in first-seen order, without repeats.

    Raises ValueError naming the problem, for the edge to turn into an `invalid` answer.
    """
    seen: dict[str, None] = {}
    for raw in topics:
        topic = " ".join(raw.split()).lower()
        if not topic:
            raise ValueError("a topic cannot be empty")
        if len(topic) > MAX_TOPIC_LENGTH:
            raise ValueError(f"a topic is at most {MAX_TOPIC_LENGTH} characters")
        seen.setdefault(topic, None)
    if len(seen) > MAX_TOPICS:
        raise ValueError(f"at most {MAX_TOPICS} topics")
    return list(seen)


# The one validated form of a topic list, for every edge that accepts topics.
Topics = Annotated[list[str], Field(max_length=50), AfterValidator(lambda v: normalize_topics(v))]
