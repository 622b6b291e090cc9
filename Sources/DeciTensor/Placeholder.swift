// DeciTensor
