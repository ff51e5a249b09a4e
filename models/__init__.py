from models.spatial_ast import (MODELS, SpatialAST, build_AST, build_AST_small, build_AST_tiny,
                                config_from_state_dict, create_model)

__all__ = ["MODELS", "SpatialAST", "build_AST", "build_AST_small", "build_AST_tiny",
           "config_from_state_dict", "create_model"]
