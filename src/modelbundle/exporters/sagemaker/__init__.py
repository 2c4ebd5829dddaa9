"""Amazon SageMaker: an inference image (``bundle containerize --target sagemaker``), model data, and deploys.

``export_model_data`` writes a bundle's artifacts as ``model.tar.gz`` (SageMaker
unpacks it into /opt/ml/model, where the image finds it); ``deploy_sagemaker``
creates the model, endpoint configuration and endpoint with boto3.
"""

from __future__ import annotations

from ._deploy import (
    DEFAULT_INSTANCE_TYPE,
    Deployment,
    DeployOptions,
    deploy_sagemaker,
    wait_for_endpoint,
)
from ._image import BIND_TO_PORT_LABEL, SAGEMAKER_PORT, SAGEMAKER_TARGET, sagemaker_recipe
from ._model_data import ARCHIVE_NAME, MODEL_DATA_FILE, ModelDataArchive, export_model_data

__all__ = [
    "ARCHIVE_NAME",
    "BIND_TO_PORT_LABEL",
    "DEFAULT_INSTANCE_TYPE",
    "MODEL_DATA_FILE",
    "SAGEMAKER_PORT",
    "SAGEMAKER_TARGET",
    "DeployOptions",
    "Deployment",
    "ModelDataArchive",
    "deploy_sagemaker",
    "export_model_data",
    "sagemaker_recipe",
    "wait_for_endpoint",
]
