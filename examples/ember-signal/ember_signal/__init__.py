"""ember-signal: an example third-party Ember plugin for 1-D signal classification.

Example:
    >>> from ember_signal import SignalData
    >>> SignalData.kind
    'signal'
"""

from ember_signal.data import SignalData, sequential_fashion
from ember_signal.models import signal_cnn

__all__ = ["SignalData", "sequential_fashion", "signal_cnn"]
__version__ = "0.1.0"
