"""Reading reference files for the report: cubes plane by plane, in bounded memory."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from refsmith.report.images import read_image


def test_a_4d_cube_is_its_first_integration(tmp_path):
    cube = np.zeros((2, 4, 8, 8), np.float32)
    cube[0] = np.arange(4)[:, None, None] * 3.0
    cube[1] = 100.0
    path = tmp_path / "dark.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube, name="SCI")]).writeto(path)
    image = read_image(path)
    assert image.kind == "cube" and image.shape == (2, 4, 8, 8)
    assert image.group_means == [0.0, 3.0, 6.0, 9.0]
    assert np.allclose(image.data, 3.0)


def test_a_big_cube_is_not_held_in_memory(tmp_path):
    """40 groups of 1024 x 1024 (168 MB on disk): reading it costs a few 2-D planes; a
    memory map or a whole read would add the cube."""
    path = tmp_path / "dark.fits"
    cube = np.ones((40, 1024, 1024), np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube, name="SCI")]).writeto(path)
    del cube
    def grown(read: str) -> list[str]:
        code = f"""
from astropy.io import fits
from refsmith.report.images import read_image
from refsmith.report.trends import file_statistic
import numpy as np
def peak():  # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's)
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024
before = peak()
out = {read}
print(peak() - before, *out)
"""
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120, check=True).stdout.split()

    # the measure sees a cube read whole through a memory map (the first version)
    control = grown(f"[float(fits.open({str(path)!r}, memmap=True)['SCI'].data.mean())]")
    assert int(control[0]) > 150, control
    out = grown(f"[len(read_image({str(path)!r}).group_means), "
                f"file_statistic({str(path)!r})[0]]")
    assert int(out[1]) == 40 and float(out[2]) == pytest.approx(0.0)
    assert int(out[0]) < 80, f"reading the cube grew the process by {out[0]} MB"
