"""Every conf/data/<domain>.yaml builds a DomainData at smoke scale and gives a batch
(embedded domains) or a clear error naming the stand-in (real domains absent here)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from genda.config import CONF_DIR, build
from genda.data.sources import REAL
from genda.errors import DataError

DOMAIN_CONFIGS = sorted(p.stem for p in (CONF_DIR / "data").glob("*.yaml") if not p.stem.startswith("pair"))


def _data(name: str, tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"data={name}", "scale=smoke", f"paths.data_dir={tmp_path}"])
    return build(cfg, "data")


@pytest.mark.parametrize("name", DOMAIN_CONFIGS)
def test_data_config_gives_batches_or_names_stand_in(name: str, tmp_path) -> None:
    data = _data(name, tmp_path)
    assert data.domain_name == name
    if name in REAL:
        with pytest.raises(DataError, match=f"data={REAL[name][1]}"):
            data.split("train")
        return
    batch = next(iter(data.train_loader()))
    c, h = batch["image"].shape[1:3]
    assert (data.channels in (None, c)) and (data.image_size in (None, h))
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert len(data.split("train")) <= 64 and data.info["provenance"]
