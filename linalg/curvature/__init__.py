"""Inverse-Hessian (inverse-Fisher) vector products and Hutchinson estimators."""

__all__: list[str] = []
