"""Reinforcement learning for execution: the Gymnasium environment in which one episode is one
parent order worked in the simulated market (``ExecutionEnv``, registered as
``sor/Execution-v0``), its vectorised forms, its observation schema and baseline policies.

This module only re-exports (and registers the environment id with Gymnasium)."""

import gymnasium

from sor.rl.env import (
    FILL_DTYPE,
    WAIT,
    ChildOrder,
    DecodedAction,
    Episode,
    ExecutionEnv,
    ExecutionEnvConfig,
    OrderStyle,
)
from sor.rl.baselines import (
    EpisodeResult,
    ImmediatePolicy,
    TwapPolicy,
    WaitPolicy,
    run_episode,
)
from sor.rl.observation import Feature, ObservationSchema, execution_observation_schema
from sor.rl.vector import VectorExecutionEnv, make_vector_env

ENV_ID = "sor/Execution-v0"

ROUTING_ENV_ID = "sor/Routing-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point="sor.rl.env:ExecutionEnv")
if ROUTING_ENV_ID not in gymnasium.registry:
    gymnasium.register(ROUTING_ENV_ID, entry_point="sor.rl.routing:RoutingEnv")

__all__ = [
    "ENV_ID",
    "ROUTING_ENV_ID",
    "ExecutionEnv",
    "ExecutionEnvConfig",
    "Episode",
    "OrderStyle",
    "DecodedAction",
    "ChildOrder",
    "WAIT",
    "FILL_DTYPE",
    "Feature",
    "ObservationSchema",
    "execution_observation_schema",
    "VectorExecutionEnv",
    "make_vector_env",
    "TwapPolicy",
    "ImmediatePolicy",
    "WaitPolicy",
    "EpisodeResult",
    "run_episode",
]
