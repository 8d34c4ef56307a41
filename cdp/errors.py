"""Which failures are the user's to act on (printed as one line) rather than bugs (tracebacks)."""

from __future__ import annotations


def is_user_facing(exc: BaseException) -> bool:
    """True for errors that explain themselves: bad input, failed runs, bad data."""
    import duckdb

    from cdp.publish import PublishError
    from cdp.quality.findings import QualityGateFailed
    from cdp.runner import PipelineFailed
    from cdp.segments import UnknownSegmentError
    from cdp.transform import DbtBuildFailed

    user_facing: tuple[type[BaseException], ...] = (
        ValueError,
        FileNotFoundError,
        PipelineFailed,
        PublishError,
        QualityGateFailed,
        DbtBuildFailed,
        UnknownSegmentError,
        duckdb.Error,
    )
    return isinstance(exc, user_facing)
