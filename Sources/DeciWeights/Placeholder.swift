// DeciWeights
