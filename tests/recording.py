"""What a model logs, kept in memory: the figures of each dump, as the tests read them."""

from typing import Any

from stable_baselines3.common.logger import KVWriter, Logger


class RecordingWriter(KVWriter):
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.records.append(dict(key_values))


def recorded(model: Any) -> list[dict[str, Any]]:
    """Log ``model``'s figures into the returned list, one dict per dump."""
    writer = RecordingWriter()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    return writer.records
