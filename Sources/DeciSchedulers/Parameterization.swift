// The denoiser's parameterisation, in one place: how an epsilon, v or sample prediction turns into
// the predicted clean sample x0 and the predicted noise. Two coordinate systems occur in diffusers:
//
// - variance preserving, x_t = alpha * x0 + sigma * eps with alpha = sqrt(alpha_bar),
//   sigma = sqrt(1 - alpha_bar) (DDIM, DDPM, PNDM, LCM, DPM-Solver, UniPC);
// - variance exploding, x = x0 + sigma * eps with sigma = sqrt((1 - alpha_bar) / alpha_bar)
//   (Euler, Euler ancestral, Heun, LMS), whose samples are the VP ones divided by alpha.
//
// The float32 operation order follows the diffusers expressions so results match to the last bits.

enum Parameterization {
    /// Predicted x0 in VP coordinates.
    static func x0(_ type: PredictionType, output: [Float], sample: [Float], alpha: Float, sigma: Float) -> [Float] {
        switch type {
        case .epsilon: return map2(sample, output) { (s, o) in (s - sigma * o) / alpha }
        case .vPrediction: return map2(sample, output) { (s, o) in alpha * s - sigma * o }
        case .sample: return output
        }
    }

    /// Predicted noise in VP coordinates; `x0` must be what `x0(...)` returned for the `.sample` case.
    static func epsilon(_ type: PredictionType, output: [Float], sample: [Float], x0: [Float], alpha: Float, sigma: Float) -> [Float] {
        switch type {
        case .epsilon: return output
        case .vPrediction: return map2(output, sample) { (o, s) in alpha * o + sigma * s }
        case .sample: return map2(sample, x0) { (s, x) in (s - alpha * x) / sigma }
        }
    }

    /// Predicted x0 in VE (sigma) coordinates, for samples already in that scale.
    static func x0VE(_ type: PredictionType, output: [Float], sample: [Float], sigma: Float) -> [Float] {
        switch type {
        case .epsilon: return map2(sample, output) { (s, o) in s - sigma * o }
        case .vPrediction:
            let c1 = -sigma / (sigma * sigma + 1).squareRoot(), c2 = sigma * sigma + 1
            return map2(output, sample) { (o, s) in o * c1 + s / c2 }
        case .sample: return output
        }
    }

    /// (alpha, sigma) of the VP form for a VE sigma, as DPM-Solver and UniPC derive them.
    static func alphaSigma(fromVE sigma: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }
}
