import re
import subprocess
import sys
import time

from click.testing import CliRunner

from aigbench import __version__
from aigbench.cli.main import cli

from conftest import bench

EXPECTED = {
    "mymodel.py",
    "train.py",
    "test.py",
    "test_robust.py",
    "train_mymodel.sh",
    "test_mymodel.sh",
    "test_robust_mymodel.sh",
    "test_datasets.json",
    "README-aigbench.md",
    "cross_generator.py",
    "sliding_windows.py",
    "cross_generator_mymodel.sh",
    "sliding_windows_mymodel.sh",
    "train_slurm.sh",
    "sweep_space.yaml",
}


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys, time; t=time.time(); from aigbench.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', time.time()-t)"
    )
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "NO_TORCH" in out, out
    assert "init" in out and "models" in out and "env" in out
    assert time.time() - start < 5  # a loose bound: the import itself is ~0.1 s


def test_init_writes_every_file_with_version(tmp_path):
    bench("init", cwd=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == EXPECTED
    for name in EXPECTED:
        assert __version__ in (tmp_path / name).read_text(), name
    # generated scripts are thin: they call the library rather than copy it
    for name in ("train.py", "test.py", "test_robust.py", "cross_generator.py", "sliding_windows.py"):
        assert len((tmp_path / name).read_text().splitlines()) < 100
    assert "EDIT HERE" in (tmp_path / "test_robust.py").read_text()


def test_init_never_touches_an_existing_file_and_force_names_what_it_replaces(tmp_path):
    bench("init", cwd=tmp_path)
    (tmp_path / "mymodel.py").write_text("# my precious edits\n")
    (tmp_path / "train_mymodel.sh").unlink()  # one file went missing
    proc = bench("init", cwd=tmp_path)  # no question, no error: what is missing is added
    assert (tmp_path / "mymodel.py").read_text() == "# my precious edits\n"
    assert (tmp_path / "train_mymodel.sh").is_file()
    assert "1 file(s) added, 1 kept as they are" in proc.stdout
    assert re.search(r"added\s+train_mymodel.sh", proc.stdout) and re.search(
        r"kept \(yours differs\)\s+mymodel.py", proc.stdout
    )
    forced = bench("init", "--force", cwd=tmp_path)
    assert re.search(r"replaced \(--force\)\s+mymodel.py", forced.stdout) and "1 replaced" in forced.stdout
    assert "MODELS.register_module" in (tmp_path / "mymodel.py").read_text()


def test_init_model_zoo_inside_a_project_adds_the_zoo_and_keeps_the_users_files(tmp_path):
    bench("init", cwd=tmp_path)
    edited = {name: f"# edited {name}\n" for name in ("train.py", "mymodel.py", "test_datasets.json")}
    for name, text in edited.items():
        (tmp_path / name).write_text(text)
    before = {p.name for p in tmp_path.iterdir()}
    proc = bench("init", "model_zoo", cwd=tmp_path)
    for name, text in edited.items():
        assert (tmp_path / name).read_text() == text, name
    added = {p.name for p in tmp_path.iterdir()} - before
    assert added and all(re.search(rf"added\s+{re.escape(n)}\n", proc.stdout) for n in added)
    assert any(n.startswith("train_") and n.endswith(".sh") and n != "train_mymodel.sh" for n in added), added
    assert re.search(r"kept \(yours differs\)\s+train.py", proc.stdout)


def test_unknown_template(tmp_path):
    proc = bench("init", "nope", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "unknown template 'nope'" in proc.stderr


def test_models_lists_and_shows_flags(project):
    out = bench("models", "-i", "mymodel", cwd=project).stdout
    assert "MyModel" in out and "small CNN" in out
    out = bench("models", "MyModel", "-i", "mymodel", cwd=project).stdout
    assert "--width" in out and "--batch_norm/--no-batch_norm" in out
    proc = bench("models", "MyModle", "-i", "mymodel", cwd=project, check=False)
    assert proc.returncode != 0 and "Did you mean 'MyModel'" in proc.stderr


def test_env_reports_versions_and_device(tmp_path):
    out = bench("env", cwd=tmp_path).stdout
    assert f"aigbench               {__version__}" in out
    assert "torch" in out and "device" in out


def test_models_pretrained_lists_released_checkpoints_and_their_flags():
    from aigbench.registry import MODELS

    out = CliRunner().invoke(cli, ["models", "--pretrained"])
    assert out.exit_code == 0, out.output
    for name in ("FreqNet", "RINE", "DRCT", "BFree", "C2PCLIP", "CommForViT", "dinov2_vitl14_probe", "NPR"):
        assert f"\n{name}  [" in "\n" + out.output, name
    assert "model_4class_trainable.pth --nproj 2 --proj_dim 1024" in out.output
    assert "f3f53fa647848b16cf81c913f148a198" in out.output  # B-Free's published MD5
    assert "MyModel" not in out.output and "PCALogReg" not in out.output  # nothing released
    released = [n for n in MODELS.list() if getattr(MODELS.get(n), "checkpoints", ())]
    assert out.output.count("    load:   ") == sum(len(MODELS.get(n).checkpoints) for n in released)
    one = CliRunner().invoke(cli, ["models", "--pretrained", "*Free"])
    assert one.exit_code == 0 and one.output.startswith("BFree  [") and "FreqNet" not in one.output
    none = CliRunner().invoke(cli, ["models", "--pretrained", "PCALogReg"])
    assert none.exit_code != 0 and "no matching model has published weights" in none.output
