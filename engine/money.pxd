# Integer money helpers shared by the engine modules (cimported, no Python call overhead).

cdef long long c_round_half_up(long long num, long long den)
cdef long long c_percent_of(long long base, double percent)
cdef list c_split_largest_remainder(long long total, list weights)
cdef long long c_to_int(object value, str field) except? -1
