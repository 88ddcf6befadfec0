"""Old module-level class paths of the data layer still load, as the very classes the new paths name."""

from __future__ import annotations

import importlib

import pytest
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningDataModule

import affectlab.data
from affectlab.data.aliases import MOVED_MODULES


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_an_old_module_path_is_the_module_it_moved_to(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED_MODULES[old])
    assert module.__spec__.name == MOVED_MODULES[old]  # the module keeps its own identity


@pytest.mark.parametrize("name", affectlab.data.__all__)
def test_every_data_module_is_served_from_the_package_face(name):
    cls = getattr(affectlab.data, name)
    assert issubclass(cls, LightningDataModule) and cls.__name__ == name


def test_an_old_config_naming_a_module_level_class_path_still_loads(tmp_path):
    config = {"data": {"class_path": "affectlab.data.folders.FolderDataModule",
                       "init_args": {"name": "rafdb", "root": str(tmp_path)}}}
    parser = ArgumentParser()
    parser.add_subclass_arguments(LightningDataModule, "data")
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(config))
    data = parser.instantiate_classes(parser.parse_path(path)).data
    assert type(data) is affectlab.data.FolderDataModule
    old = importlib.import_module("affectlab.data.affectsynth").AffectSynthDataModule
    assert old is affectlab.data.AffectSynthDataModule


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchDataModule"):
        affectlab.data.NoSuchDataModule  # noqa: B018
