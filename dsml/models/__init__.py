"""The networks the chapters define, as plain ``nn.Module``s."""
