// Optimizer updates (SGD, Adam/AdamW, Adagrad, RMSprop), the maths of torch.optim's algorithm boxes.
//
// One launch updates one parameter in place, one work-item per element. Everything that may change
// between steps is read from device memory, never passed as a scalar argument, so a recorded launch
// can be replayed step after step:
//   hyper[]  the param group's hyperparameters (layout below), rewritten by the host only when they change;
//   steps[]  one int per parameter of the group: how many updates it has had. An update uses
//            t = steps[slot] + 1; count_steps adds the 1 after all updates of the step (a separate
//            launch, since work-items of one launch cannot agree on when to write it).
//
// Required: OPTIM (1 sgd, 2 adam, 3 adagrad, 4 rmsprop) and the flags of that optimizer:
//   sgd:     MOMENTUM (0/1: momentum != 0, a momentum buffer exists), NESTEROV (0/1)
//   adam:    DECOUPLED_WD (0: Adam's L2 term in the gradient, 1: AdamW's decoupled decay), AMSGRAD (0/1)
//   rmsprop: MOMENTUM (0/1: momentum > 0), CENTERED (0/1)
// Host-computed quantities (1 - beta, log(beta), 1 - lr * wd) come in hyper[] in float32 from float64,
// as torch computes them in double: 1.0f - 0.999f would lose digits.

#define OPTIM_SGD 1
#define OPTIM_ADAM 2
#define OPTIM_ADAGRAD 3
#define OPTIM_RMSPROP 4

#ifndef OPTIM
#error "OPTIM must be defined (1 sgd, 2 adam, 3 adagrad, 4 rmsprop)"
#endif

#if OPTIM == OPTIM_SGD || OPTIM == OPTIM_RMSPROP
#ifndef MOMENTUM
#error "MOMENTUM must be defined (0 or 1)"
#endif
#endif

// steps[slots[i]] += 1 for every parameter updated in this step (slots: their places in steps[]).
__kernel void count_steps(__global int *steps, __global const int *slots, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    steps[slots[i]] += 1;
}

#if OPTIM == OPTIM_SGD
#ifndef NESTEROV
#error "NESTEROV must be defined (0 or 1)"
#endif
// hyper: lr, momentum, 1 - dampening, weight_decay
__kernel void sgd_step(__global float *p, __global const float *grad, __global float *buf,
                       __global const float *hyper, __global const int *steps, const int slot, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float lr = hyper[0], wd = hyper[3];
    float g = grad[i];
    if (wd != 0.0f) g += wd * p[i];
#if MOMENTUM
    const float mu = hyper[1], one_minus_damp = hyper[2];
    // torch starts the buffer as a copy of the first gradient (no dampening on step 1)
    const float b = steps[slot] == 0 ? g : mu * buf[i] + one_minus_damp * g;
    buf[i] = b;
#if NESTEROV
    g += mu * b;
#else
    g = b;
#endif
#endif
    p[i] -= lr * g;
}

#elif OPTIM == OPTIM_ADAM
#ifndef DECOUPLED_WD
#error "DECOUPLED_WD must be defined (0 Adam, 1 AdamW)"
#endif
#ifndef AMSGRAD
#error "AMSGRAD must be defined (0 or 1)"
#endif
// hyper: lr, beta1, beta2, 1 - beta1, 1 - beta2, log(beta1), log(beta2), eps, weight_decay, 1 - lr * weight_decay
__kernel void adam_step(__global float *p, __global const float *grad, __global float *exp_avg,
                        __global float *exp_avg_sq, __global float *max_exp_avg_sq, __global const float *hyper,
                        __global const int *steps, const int slot, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float lr = hyper[0], beta2 = hyper[2], omb1 = hyper[3], omb2 = hyper[4];
    const float eps = hyper[7], wd = hyper[8];
    const float t = (float)(steps[slot] + 1);
    float g = grad[i];
    float w = p[i];
#if DECOUPLED_WD
    w *= hyper[9];
#else
    if (wd != 0.0f) g += wd * w;
#endif
    const float m = exp_avg[i] + omb1 * (g - exp_avg[i]);  // torch: exp_avg.lerp_(grad, 1 - beta1)
    const float v = beta2 * exp_avg_sq[i] + omb2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    // 1 - beta^t as -expm1(t * log(beta)): accurate while beta^t is near 1; beta = 0 gives log = -inf -> 1
    const float bc1 = -expm1(t * hyper[5]);
    const float bc2 = -expm1(t * hyper[6]);
#if AMSGRAD
    const float old = max_exp_avg_sq[i];
    const float vmax = old > v ? old : v;  // torch.maximum: a NaN v propagates
    max_exp_avg_sq[i] = vmax;
#else
    const float vmax = v;
#endif
    const float denom = sqrt(vmax) / sqrt(bc2) + eps;
    p[i] = w - (lr / bc1) * (m / denom);
}

#elif OPTIM == OPTIM_ADAGRAD
// hyper: lr, lr_decay, weight_decay, eps
__kernel void adagrad_step(__global float *p, __global const float *grad, __global float *sum,
                           __global const float *hyper, __global const int *steps, const int slot, const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float lr = hyper[0], lr_decay = hyper[1], wd = hyper[2], eps = hyper[3];
    float g = grad[i];
    if (wd != 0.0f) g += wd * p[i];
    const float clr = lr / (1.0f + (float)steps[slot] * lr_decay);  // steps[slot] is t - 1
    const float s = sum[i] + g * g;
    sum[i] = s;
    p[i] -= clr * (g / (sqrt(s) + eps));
}

#elif OPTIM == OPTIM_RMSPROP
#ifndef CENTERED
#error "CENTERED must be defined (0 or 1)"
#endif
// hyper: lr, alpha, 1 - alpha, eps, weight_decay, momentum
__kernel void rmsprop_step(__global float *p, __global const float *grad, __global float *square_avg,
                           __global float *grad_avg, __global float *buf, __global const float *hyper,
                           const int n)
{
    const int i = get_global_id(0);
    if (i >= n) return;
    const float lr = hyper[0], alpha = hyper[1], oma = hyper[2], eps = hyper[3], wd = hyper[4];
    float g = grad[i];
    if (wd != 0.0f) g += wd * p[i];
    const float sq = alpha * square_avg[i] + oma * g * g;
    square_avg[i] = sq;
#if CENTERED
    const float ga = grad_avg[i] + oma * (g - grad_avg[i]);  // torch: grad_avg.lerp_(grad, 1 - alpha)
    grad_avg[i] = ga;
    const float avg = sqrt(sq - ga * ga) + eps;
#else
    const float avg = sqrt(sq) + eps;
#endif
#if MOMENTUM
    const float b = hyper[5] * buf[i] + g / avg;
    buf[i] = b;
    p[i] -= lr * b;
#else
    p[i] -= lr * (g / avg);
#endif
}

#else
#error "Unknown OPTIM"
#endif
