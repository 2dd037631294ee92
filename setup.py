import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"', (here / "aigbench" / "__init__.py").read_text()).group(1)

setup(
    name="aigbench",
    version=version,
    description="A toolkit for training, testing and stress-testing detectors of AI-generated images",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(exclude=("tests", "benchmarks")),
    include_package_data=True,
    package_data={
        "aigbench": [
            "templates/*/*",
            "datasets/demo/*.md",
            "datasets/demo/*/*/*.jpg",
            "protocols/data/*.json",
            "suites/data/*.json",
            "reports/templates/*",
        ]
    },
    install_requires=[
        # torch and torchvision must be a matched pair; pip resolves them together.
        # torch >= 2.6: torch.load(weights_only=True) is not a safe loader below it.
        "torch>=2.6",
        "torchvision>=0.21",
        "timm>=1.0",
        # area_for_downscale (antialiased downscaling) in Resize / SmallestMaxSize
        "albumentations>=2.0.8",
        "opencv-python-headless>=4.8",
        "tensorboard>=2.14",
        "click>=8.1",
        "jinja2>=3.1",
        "numpy>=1.24",
        "scikit-learn>=1.3",
        "pillow>=9.1",
        "pyarrow>=14",
        "tqdm>=4.60",
        "matplotlib>=3.7",
    ],
    extras_require={
        # Hugging Face `datasets` is not needed to read local parquet or save_to_disk folders (pyarrow
        # reads them); the extra is for building and downloading such sets.
        "hf": ["datasets>=2.14"],
        # bench sweep (Optuna brings PyYAML, which reads the search space)
        "sweep": ["optuna>=3.4"],
        # --wandb (offline by default): Weights & Biases mirror of the TensorBoard scalars
        "wandb": ["wandb>=0.19"],
        # bench explain: class-activation maps (pytorch-grad-cam) and their sanity checks
        "explain": ["grad-cam>=1.5"],
        "test": [
            "pytest>=7",
            # the suite runs on two workers (pyproject.toml: -n 2 --dist loadfile)
            "pytest-xdist>=3.5",
            "ruff>=0.4",
            "open-clip-torch>=2.24",
            "datasets>=2.14",
            "selenium>=4.10",
            "optuna>=3.4",
            "wandb>=0.19",
            # reference of DRCT's contrastive loss in the tests
            "pytorch-metric-learning>=2.0",
            # reference of C2P-CLIP's Hugging Face CLIP layout in the tests
            "transformers>=4.40",
            # writes the WebDataset shards of the tests (aigbench reads them with the standard library)
            "webdataset>=0.2",
            "grad-cam>=1.5",
        ],
    },
    entry_points={"console_scripts": ["bench=aigbench.cli.main:cli"]},
)
