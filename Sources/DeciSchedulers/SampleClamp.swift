/// x0 post-processing: plain clipping or Imagen's dynamic thresholding.
struct SampleClamp: Sendable, Equatable {
    var thresholding = false
    var dynamicThresholdingRatio: Float = 0.995
    var sampleMaxValue: Float = 1
    var clipSample = false
    var clipSampleRange: Float = 1
    /// Splits the flat sample into the images thresholding treats separately; nil: one image.
    var elementsPerImage: Int?

    func apply(_ x0: [Float]) -> [Float] {
        if thresholding {
            return dynamicThreshold(x0, ratio: dynamicThresholdingRatio, maxValue: sampleMaxValue,
                                    elementsPerImage: elementsPerImage ?? x0.count)
        }
        if clipSample {
            let r = clipSampleRange
            return map1(x0) { min(max($0, -r), r) }
        }
        return x0
    }
}

/// A scheduler whose x0 goes through a `SampleClamp`, which holds the per-image size it needs.
protocol SampleClamping: Scheduler {
    var clamp: SampleClamp { get set }
}

extension SampleClamping {
    /// Image size in elements for thresholding, which works per image; nil treats the whole sample
    /// as one image.
    public var elementsPerImage: Int? {
        get { clamp.elementsPerImage }
        set { clamp.elementsPerImage = newValue }
    }
}

extension SampleClamp {
    /// The clamp a diffusers class configures: its thresholding keys where it has them, and its
    /// clipping keys with the class's `clip_sample` default where it has clipping (nil: it has not).
    init(config: SchedulerConfig, hasThresholding: Bool = true, clipSampleDefault: Bool?) {
        self.init()
        if hasThresholding {
            thresholding = config.thresholding ?? false
            dynamicThresholdingRatio = Float(config.dynamicThresholdingRatio ?? 0.995)
            sampleMaxValue = Float(config.sampleMaxValue ?? 1)
        }
        if let clipSampleDefault {
            clipSample = config.clipSample ?? clipSampleDefault
            clipSampleRange = Float(config.clipSampleRange ?? 1)
        }
    }
}

/// Per image: s = the `ratio` quantile of |x| (linear interpolation, as torch.quantile), clamped to
/// [1, maxValue]; then x is clamped to [-s, s] and divided by s.
func dynamicThreshold(_ x: [Float], ratio: Float, maxValue: Float, elementsPerImage: Int) -> [Float] {
    guard elementsPerImage > 0, x.count % elementsPerImage == 0 else { return x }
    var out = x
    for start in stride(from: 0, to: x.count, by: elementsPerImage) {
        let image = x[start..<(start + elementsPerImage)]
        let sorted = image.map { abs($0) }.sorted()
        let rank = ratio * Float(sorted.count - 1)
        let lower = Int(rank.rounded(.down)), upper = Int(rank.rounded(.up))
        let w = rank - Float(lower)
        let a = sorted[lower], b = sorted[upper]
        // torch.lerp switches formula at weight 0.5 for accuracy at both ends.
        var s = w < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w)
        s = min(max(s, 1), maxValue)
        for i in start..<(start + elementsPerImage) { out[i] = min(max(x[i], -s), s) / s }
    }
    return out
}
