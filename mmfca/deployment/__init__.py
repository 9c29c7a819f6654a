# Copyright (c) mmfca contributors. All rights reserved.
from .onnx_export import (PARTS, check_onnx, export_onnx, exportable,
                          onnx_domains, output_path)

__all__ = [
    'PARTS', 'check_onnx', 'export_onnx', 'exportable', 'onnx_domains',
    'output_path'
]
