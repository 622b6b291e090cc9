print("decidiffusion: not yet implemented")
