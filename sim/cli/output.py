"""Writing a command's files all or nothing: staged inside the output folder, then moved up.

``sim run`` publishes a run's results and charts this way, ``sim plot`` the charts it draws.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sim.errors import SimError


def publish(out: Path, ds, *, plot: bool) -> list[Path]:
    """Write results (and every chart a single run supports) into ``out``, all or nothing."""
    from sim.charts import Material, supported
    from sim.results import write_results

    def write(staging: Path) -> None:
        write_results(ds, staging)
        if plot:
            material = Material(out, run=ds)
            draw_charts(material, supported(material), staging, ("png", "pdf"))

    paths = staged(out, write)
    return sorted(paths, key=lambda p: (p.suffix != ".nc", p.name))  # the results first


def draw_charts(material, kinds: list[str], folder: Path, formats: tuple[str, ...]) -> None:
    """Draw each chart in ``kinds`` of ``material`` into ``folder``, in every format."""
    from sim.charts import draw
    from sim.plots import save_figure

    for name in kinds:
        save_figure(draw(material, name), folder / name, formats)


def staged(out: Path, write) -> list[Path]:
    """Call ``write(folder)`` on a hidden staging folder inside ``out``, then move its files up.

    The staging folder (``out/.staging-*``) is on ``out``'s own filesystem, so each move is a
    rename within one device even when ``out`` is a mount point (a staging folder beside
    ``out`` would be on the parent's filesystem, and ``os.replace`` would fail with EXDEV).
    Nothing appears in ``out`` under the written names unless ``write`` finishes; on failure
    the staging folder is removed (and ``out`` too if this call created it and it is still
    empty); only the files written are replaced, anything else in ``out`` is left alone.
    Returns the files' paths in ``out``.
    """
    if out.exists() and not out.is_dir():
        raise SimError(f"{out}: exists and is not a folder")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        write(staging)
        names = sorted(p.name for p in staging.iterdir())
        for path in staging.iterdir():
            path.chmod(0o644)
        for name in names:  # replace only the files written now
            os.replace(staging / name, out / name)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            try:
                out.rmdir()  # only if still empty
            except OSError:
                pass
        raise
    return [out / n for n in names]
