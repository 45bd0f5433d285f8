"""rova: train video-reasoning VLMs that stay right when the video is degraded."""

__version__ = "0.1.0"
