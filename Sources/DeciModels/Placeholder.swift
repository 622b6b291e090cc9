// DeciModels
