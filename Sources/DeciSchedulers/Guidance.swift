// Classifier-free guidance and guidance rescale, as diffusers' StableDiffusionPipeline applies them
// (`noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)`, then
// `rescale_noise_cfg`). Inputs are flat batches of images of `elementsPerImage` elements each.

/// Classifier-free guidance: `uncond + scale * (cond - uncond)`, element-wise in float32.
public func classifierFreeGuidance(uncond: [Float], cond: [Float], scale: Double) throws(SchedulerError) -> [Float] {
    try checkSize(cond, "cond", uncond.count)
    let s = Float(scale)
    return map2(uncond, cond) { (u, c) in u + s * (c - u) }
}

/// Guidance rescale (Lin et al. 2023, section 3.4): per image, scale the guided prediction to the
/// standard deviation of the conditional one, then mix: `phi * rescaled + (1 - phi) * guided`.
/// Standard deviations are over all elements of an image and unbiased, as `torch.std`.
public func rescaleGuidance(_ guided: [Float], cond: [Float], phi: Double,
                            elementsPerImage: Int) throws(SchedulerError) -> [Float] {
    try checkSize(cond, "cond", guided.count)
    guard elementsPerImage > 1, guided.count % elementsPerImage == 0 else {
        throw .sizeMismatch(parameter: "elementsPerImage (must divide the sample and exceed 1)",
                            expected: guided.count, actual: elementsPerImage)
    }
    let wRescaled = Float(phi), wGuided = Float(1 - phi)
    var out = guided
    for start in stride(from: 0, to: guided.count, by: elementsPerImage) {
        let range = start..<(start + elementsPerImage)
        let ratio = standardDeviation(cond[range]) / standardDeviation(guided[range])
        for i in range {
            let rescaled = guided[i] * ratio
            out[i] = wRescaled * rescaled + wGuided * guided[i]
        }
    }
    return out
}

/// Guidance as the pipeline applies it: CFG, then rescale when `rescale > 0`.
public func applyGuidance(uncond: [Float], cond: [Float], scale: Double, rescale: Double = 0,
                          elementsPerImage: Int) throws(SchedulerError) -> [Float] {
    let guided = try classifierFreeGuidance(uncond: uncond, cond: cond, scale: scale)
    return rescale > 0 ? try rescaleGuidance(guided, cond: cond, phi: rescale, elementsPerImage: elementsPerImage) : guided
}

/// Unbiased standard deviation, accumulated in Double (torch reduces float32 in double on CPU).
func standardDeviation(_ x: ArraySlice<Float>) -> Float {
    let n = Double(x.count)
    let mean = x.reduce(0.0) { $0 + Double($1) } / n
    let ss = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
    return Float((ss / (n - 1)).squareRoot())
}
