// Helpers shared by the kernels. Included with #include "common.h"; hetero.program inlines it,
// so the program cache key covers this file too.
#ifndef HETERO_COMMON_H
#define HETERO_COMMON_H

#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f

// Activation ids for -DACT=<id>: the table hetero/ops/activation.py's ACTIVATIONS holds too (a test checks
// that they agree). ACT_ALPHA is the slope of LEAKY_RELU or the alpha of ELU.
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LEAKY_RELU 2
#define ACT_ELU 3
#define ACT_SELU 4
#define ACT_SIGMOID 5
#define ACT_TANH 6

#ifdef ACT
#if ACT == ACT_LEAKY_RELU || ACT == ACT_ELU
#ifndef ACT_ALPHA
#error "ACT_ALPHA must be defined for LEAKY_RELU and ELU"
#endif
#endif

// y = f(x)
inline float act_forward(float x)
{
#if ACT == ACT_NONE
    return x;
#elif ACT == ACT_RELU
    return x < 0.0f ? 0.0f : x;  // not fmax(x, 0), which turns NaN into 0 and so hides it (torch keeps NaN)
#elif ACT == ACT_LEAKY_RELU
    return x > 0.0f ? x : x * ACT_ALPHA;
#elif ACT == ACT_ELU
    return x > 0.0f ? x : ACT_ALPHA * (exp(x) - 1.0f);
#elif ACT == ACT_SELU
    return SELU_SCALE * (x > 0.0f ? x : SELU_ALPHA * (exp(x) - 1.0f));
#elif ACT == ACT_SIGMOID
    return 1.0f / (1.0f + exp(-x));
#elif ACT == ACT_TANH
    return tanh(x);
#else
#error "Unknown ACT value"
#endif
}

// dL/dx from dL/dy, given the forward output y (every activation here is invertible enough
// for that), so backward needs only the saved output. The branch tests are torch's (`<= 0` picks the
// negative side), so a NaN input takes the same branch as in torch.
inline float act_backward(float dy, float y)
{
#if ACT == ACT_NONE
    return dy;
#elif ACT == ACT_RELU
    return y <= 0.0f ? 0.0f : dy;
#elif ACT == ACT_LEAKY_RELU
    return y > 0.0f ? dy : dy * ACT_ALPHA;
#elif ACT == ACT_ELU
    return y <= 0.0f ? dy * (y + ACT_ALPHA) : dy;
#elif ACT == ACT_SELU
    return y <= 0.0f ? dy * (y + SELU_SCALE * SELU_ALPHA) : dy * SELU_SCALE;
#elif ACT == ACT_SIGMOID
    return dy * y * (1.0f - y);
#elif ACT == ACT_TANH
    return dy * (1.0f - y * y);
#endif
}
#endif  // ACT

#endif  // HETERO_COMMON_H
