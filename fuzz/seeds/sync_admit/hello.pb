


c1seed