"""Pictures: sample grids for images, scatter plots for 2-D toy data."""

from gankit.viz.grid import save_image_grid, save_points_plot, save_samples

__all__ = ["save_image_grid", "save_points_plot", "save_samples"]
