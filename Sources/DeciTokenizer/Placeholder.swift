// DeciTokenizer
