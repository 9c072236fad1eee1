// Fill a buffer with one value (zeros, ones, gradient seeds). One work-item per element.

__kernel void fill_f32(__global float *out, const float value, const int n)
{
    const int i = get_global_id(0);
    if (i < n) out[i] = value;
}

__kernel void fill_i32(__global int *out, const int value, const int n)
{
    const int i = get_global_id(0);
    if (i < n) out[i] = value;
}
