"""mmcli: run multimodal AI models locally from the command line."""

__version__ = "0.1.0"
