// DeciSchedulers
