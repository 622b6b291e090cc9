// DeciDiffusion
