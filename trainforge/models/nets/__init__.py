"""Plain torch ``nn.Module``s: no training logic, no trainforge imports beyond configs."""
