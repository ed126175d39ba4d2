"""Headless agents: a publisher bot and a subscriber test agent (WHIP/WHEP)."""

from .impairing import LinkShape
from .publisher import PublisherAgent
from .subscriber import SubscriberAgent

__all__ = ["LinkShape", "PublisherAgent", "SubscriberAgent"]
