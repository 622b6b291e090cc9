// DeciImage
