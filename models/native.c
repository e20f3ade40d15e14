/* Compiled loops of the ramp model's training step (models/native.py builds and loads them).
 *
 * Each function does, element for element, the float32 operations of the NumPy expression it
 * replaces, in the same order, so the results are the same bits: it must be compiled without
 * floating-point contraction (-ffp-contract=off: no fused multiply-add) and without fast-math.
 * Arrays are C-contiguous float32; sizes are in elements.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

/* Adam (training.exact.Adam.step), one parameter array of n elements:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) (g g);  p -= (step m) / (sqrt(v) + eps_t)
 * as  tmp = g * omb1; m = m * b1; m = m + tmp;  tmp = g * g; tmp = tmp * omb2; v = v * b2;
 *     v = v + tmp;  den = sqrt(v); den = den + eps_t;  tmp = m * step; tmp = tmp / den; p = p - tmp */
void adam_f32(float *p, const float *g, float *m, float *v, size_t n, float b1, float omb1,
              float b2, float omb2, float step, float eps_t)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float t = gi * omb1;
        float mi = m[i] * b1;
        mi = mi + t;
        float t2 = gi * gi;
        t2 = t2 * omb2;
        float vi = v[i] * b2;
        vi = vi + t2;
        float den = sqrtf(vi);
        den = den + eps_t;
        float u = mi * step;
        u = u / den;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - u;
    }
}

/* col2im of a transposed convolution (models.ramp.ConvGeometry.up): the product's result
 * cols (B, h, w, C, k, k) added into zero-initialised padded planes (Hp, Wp), one kernel
 * offset (dy, dx) after another in row-major order, every position (i, j) landing on
 * (i s + dy, j s + dx); out (B, C, H, W) is the planes without their padding p.
 * plane: scratch of Hp * Wp floats. */
void col2im_f32(const float *cols, float *out, float *plane, size_t B, size_t C, size_t h,
                size_t w, size_t k, size_t s, size_t p, size_t H, size_t W, size_t Hp, size_t Wp)
{
    const size_t kk = k * k, row = w * C * kk;
    for (size_t b = 0; b < B; b++) {
        for (size_t c = 0; c < C; c++) {
            memset(plane, 0, Hp * Wp * sizeof(float));
            const float *src = cols + b * h * row + c * kk;
            for (size_t dy = 0; dy < k; dy++) {
                for (size_t dx = 0; dx < k; dx++) {
                    const size_t off = dy * k + dx;
                    for (size_t i = 0; i < h; i++) {
                        float *dst = plane + (i * s + dy) * Wp + dx;
                        const float *from = src + i * row + off;
                        for (size_t j = 0; j < w; j++)
                            dst[j * s] = dst[j * s] + from[j * C * kk];
                    }
                }
            }
            float *o = out + (b * C + c) * H * W;
            for (size_t y = 0; y < H; y++)
                memcpy(o + y * W, plane + (y + p) * Wp + p, W * sizeof(float));
        }
    }
}

/* im2col of a strided convolution (models.ramp.ConvGeometry._columns): big (B, C, H, W) to
 * cols (B h' w', C k k) with zero padding p, row (b, i, j), column (c, dy, dx), the input
 * pixel (i s + dy - p, j s + dx - p). A copy: the same values whatever the order. */
void im2col_f32(const float *big, float *cols, size_t B, size_t C, size_t H, size_t W, size_t h,
                size_t w, size_t k, size_t s, size_t p)
{
    float *o = cols;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < h; i++)
            for (size_t j = 0; j < w; j++)
                for (size_t c = 0; c < C; c++) {
                    const float *img = big + (b * C + c) * H * W;
                    for (size_t dy = 0; dy < k; dy++) {
                        const ptrdiff_t y = (ptrdiff_t)(i * s + dy) - (ptrdiff_t)p;
                        for (size_t dx = 0; dx < k; dx++) {
                            const ptrdiff_t x = (ptrdiff_t)(j * s + dx) - (ptrdiff_t)p;
                            *o++ = (y >= 0 && y < (ptrdiff_t)H && x >= 0 && x < (ptrdiff_t)W)
                                   ? img[y * (ptrdiff_t)W + x] : 0.0f;
                        }
                    }
                }
}
