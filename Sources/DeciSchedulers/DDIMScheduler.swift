import DeciRandom

/// DDIM (Song et al. 2020), deterministic for `eta == 0`, adding fresh noise scaled by eta otherwise.
/// Matches diffusers `scheduling_ddim.py` (`DDIMScheduler.set_timesteps` / `step` / `add_noise`).
public struct DDIMScheduler: AlphaBarScheduler, SampleClamping {
    public let settings: ScheduleSettings
    var clamp: SampleClamp
    let finalAlphaCumprod: Float

    /// The DDIM eta: 0 is deterministic DDIM, 1 matches DDPM's variance. diffusers takes it per
    /// step; the pipeline's `eta` argument ends up here.
    public var eta: Float = 0
    /// diffusers `use_clipped_model_output`: re-derive epsilon from the clipped x0.
    public var useClippedModelOutput = false

    public private(set) var timesteps: [Float] = []
    private var stepCount: Int?

    public init(config: SchedulerConfig) throws(SchedulerError) {
        settings = try ScheduleSettings(config: config, zeroSNR: .plain, spacing: .leading)
        clamp = SampleClamp(config: config, clipSampleDefault: true)
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : settings.schedule.alphasCumprod[0]
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        try checkStepCount(steps)
        let ts = Spacing.timesteps(timestepSpacing, steps: steps, trainSteps: trainSteps, offset: stepsOffset)
        timesteps = ts.map { Float(NumPy.round($0)) }
        stepCount = steps
    }

    private func alphaProd(_ t: Int) -> Float { t >= 0 ? schedule.alphasCumprod[t] : finalAlphaCumprod }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        guard let stepCount else { throw .timestepsNotSet(scheduler: className) }
        try checkSize(modelOutput, "modelOutput", sample.count)
        let t = try trainIndex(timestep)
        let prevT = t - trainSteps / stepCount
        let alphaProdT = alphaProd(t), alphaProdPrev = alphaProd(prevT)
        let betaProdT = 1 - alphaProdT
        let alpha = alphaProdT.squareRoot(), sigma = betaProdT.squareRoot()

        var x0 = Parameterization.x0(predictionType, output: modelOutput, sample: sample, alpha: alpha, sigma: sigma)
        var eps = Parameterization.epsilon(predictionType, output: modelOutput, sample: sample, x0: x0, alpha: alpha, sigma: sigma)
        x0 = clamp.apply(x0)

        let betaProdPrev = 1 - alphaProdPrev
        let variance = (betaProdPrev / betaProdT) * (1 - alphaProdT / alphaProdPrev)
        let stdDev = eta * variance.squareRoot()
        if useClippedModelOutput {
            eps = map2(sample, x0) { (s, x) in (s - alpha * x) / sigma }
        }
        let directionScale = (1 - alphaProdPrev - stdDev * stdDev).squareRoot()
        let prevAlpha = alphaProdPrev.squareRoot()
        var prev = map2(x0, eps) { (x, e) in prevAlpha * x + directionScale * e }
        if eta > 0 {
            let z = noise.normal(count: sample.count)
            prev = map2(prev, z) { (p, n) in p + stdDev * n }
        }
        return SchedulerOutput(prevSample: prev, predOriginalSample: x0)
    }
}
