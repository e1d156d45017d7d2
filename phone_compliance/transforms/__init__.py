"""Pure transforms, one module per layer: DataFrame in, DataFrame out, no Dagster."""
