"""Domain adapters: target data into the backbone's input space and the answer back."""

from xdomain.adapters.antibody import AntibodyAdapter
from xdomain.adapters.audio import AudioAdapter, load_clips, read_audio
from xdomain.adapters.protein import ProteinAdapter, encode_proteins
from xdomain.adapters.series_to_image import SeriesToImageAdapter
from xdomain.adapters.series_to_waveform import SeriesToWaveformAdapter
from xdomain.adapters.time_series import SeriesState, TimeSeriesAdapter

__all__ = [
    "AntibodyAdapter",
    "AudioAdapter",
    "ProteinAdapter",
    "SeriesState",
    "SeriesToImageAdapter",
    "SeriesToWaveformAdapter",
    "TimeSeriesAdapter",
    "encode_proteins",
    "load_clips",
    "read_audio",
]
