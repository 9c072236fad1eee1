// Dropout with a counter-based generator (Philox4x32-10, Salmon et al., SC'11), and the generator's update.
//
// No defines. The generator state is a device buffer of four uints (hetero/random.py):
//   state[0], state[1]  the key (the 64-bit seed, low word first);
//   state[2], state[3]  a 64-bit counter of Philox blocks already used (low word first).
// Work-item b draws block counter + b, whose four 32-bit outputs decide elements 4b .. 4b+3. A mask
// depends only on (seed, counter, element index): not on work-group sizes, nor on the device. After
// each dropout the host launches philox_advance, so the next call (and every replay of a recorded
// graph) reads a fresh counter from the buffer instead of a value baked into the launch.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

inline uint4 philox_round(uint4 c, uint2 k)
{
    const uint hi0 = mul_hi(PHILOX_M0, c.s0), lo0 = PHILOX_M0 * c.s0;
    const uint hi1 = mul_hi(PHILOX_M1, c.s2), lo1 = PHILOX_M1 * c.s2;
    return (uint4)(hi1 ^ c.s1 ^ k.s0, lo1, hi0 ^ c.s3 ^ k.s1, lo0);
}

inline uint4 philox4x32_10(uint4 c, uint2 k)
{
    for (int r = 0; r < 9; ++r) {
        c = philox_round(c, k);
        k += (uint2)(PHILOX_W0, PHILOX_W1);
    }
    return philox_round(c, k);
}

// The four random words of block b of the stream the state buffer points at.
inline uint4 philox_block(__global const uint *state, const uint b)
{
    const ulong ctr = ((ulong)state[3] << 32 | state[2]) + b;
    return philox4x32_10((uint4)((uint)ctr, (uint)(ctr >> 32), 0u, 0u), (uint2)(state[0], state[1]));
}

// Element i is kept when its word is below keep_threshold (P = keep_threshold / 2^32, about 1 - p);
// y = x * (keep ? scale : 0), with scale = 1 / (1 - p), as PyTorch (a dropped inf or NaN gives NaN).
__kernel void dropout_fw(__global const float *x, __global float *y, __global uchar *mask,
                         __global const uint *state, const uint keep_threshold, const float scale, const int n)
{
    const int b = get_global_id(0);
    if (b >= (n + 3) / 4) return;
    const uint4 r4 = philox_block(state, (uint)b);
    const uint r[4] = {r4.s0, r4.s1, r4.s2, r4.s3};
    for (int k = 0; k < 4; ++k) {
        const int i = 4 * b + k;
        if (i >= n) break;
        const uchar keep = r[k] < keep_threshold;
        mask[i] = keep;
        y[i] = x[i] * (keep ? scale : 0.0f);
    }
}

__kernel void dropout_bw(__global const float *g, __global const uchar *mask, __global float *dx,
                         const float scale, const int n)
{
    const int i = get_global_id(0);
    if (i < n) dx[i] = g[i] * (mask[i] ? scale : 0.0f);
}

// One work-item: counter += blocks (64-bit, carrying into the high word).
__kernel void philox_advance(__global uint *state, const ulong blocks)
{
    if (get_global_id(0) != 0) return;
    const ulong ctr = ((ulong)state[3] << 32 | state[2]) + blocks;
    state[2] = (uint)ctr;
    state[3] = (uint)(ctr >> 32);
}
