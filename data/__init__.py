"""The sample export and its funnel.toml, installed as the package `funnel_sample` (see
pyproject.toml) so that `funnel demo` finds them in any installation."""
