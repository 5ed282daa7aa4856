"""Framework-free utilities shared by the project (no TensorFlow import anywhere in here)."""
from .util import EasyDict  # noqa: F401
