import DeciRandom

/// Pseudo numerical methods (Liu et al. 2022): a Runge-Kutta warm-up (PRK) then linear multistep
/// (PLMS), or PLMS from the start with `skip_prk_steps` as Stable Diffusion 1.x configures it.
/// Matches diffusers `scheduling_pndm.py`. Zero-SNR rescaling is not an option of this scheduler in
/// diffusers, so a config asking for it gets the plain schedule here too.
public struct PNDMScheduler: AlphaBarScheduler {
    public let settings: ScheduleSettings
    public let skipPrkSteps: Bool
    let finalAlphaCumprod: Float

    public private(set) var timesteps: [Float] = []

    private var stepCount: Int?
    private var prkCount = 0
    private var counter = 0
    private var ets: [[Float]] = []
    private var curModelOutput: [Float]?
    private var curSample: [Float]?
    private var prkTimesteps: [Int] = []

    public init(config: SchedulerConfig) throws(SchedulerError) {
        settings = try ScheduleSettings(config: config, zeroSNR: .absent, spacing: .leading)
        guard settings.predictionType != .sample else {
            throw .unsupportedOption(scheduler: Self.className, option: "prediction_type 'sample'")
        }
        skipPrkSteps = config.skipPrkSteps ?? false
        finalAlphaCumprod = (config.setAlphaToOne ?? false) ? 1 : settings.schedule.alphasCumprod[0]
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        try checkStepCount(steps)
        // Ascending, as diffusers keeps `_timesteps` before splitting it into PRK and PLMS parts.
        let ascending: [Int] = Spacing.timesteps(timestepSpacing, steps: steps, trainSteps: trainSteps, offset: stepsOffset)
            .reversed().map { Int(NumPy.round($0)) }
        var plms: [Int]
        if skipPrkSteps {
            prkTimesteps = []
            // The second-to-last entry is repeated: PLMS evaluates the model twice there to start.
            let secondToLast = ascending.count >= 2 ? [ascending[ascending.count - 2]] : []
            plms = Array(ascending.dropLast()) + secondToLast + ascending.suffix(1)
            plms.reverse()
        } else {
            guard steps >= 4 else {
                throw .invalidStepCount(scheduler: className, steps: steps,
                                        reason: "the Runge-Kutta warm-up needs at least 4 steps (or skip_prk_steps)")
            }
            let half = trainSteps / steps / 2
            var prk: [Int] = []
            for t in ascending.suffix(4) { prk += [t, t + half] }
            var doubled: [Int] = []
            for t in prk.dropLast() { doubled += [t, t] }
            prkTimesteps = Array(doubled.dropFirst().dropLast().reversed())
            plms = Array(ascending.dropLast(3).reversed())
        }
        timesteps = (prkTimesteps + plms).map { Float($0) }
        stepCount = steps
        prkCount = prkTimesteps.count
        counter = 0
        ets = []
        curModelOutput = nil
        curSample = nil
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        guard let stepCount else { throw .timestepsNotSet(scheduler: className) }
        try checkSize(modelOutput, "modelOutput", sample.count)
        let t = try trainIndex(timestep)
        let prev = counter < prkCount && !skipPrkSteps
            ? stepPRK(modelOutput, t, sample, stepCount)
            : stepPLMS(modelOutput, t, sample, stepCount)
        counter += 1
        return SchedulerOutput(prevSample: prev)
    }

    private mutating func stepPRK(_ output: [Float], _ t: Int, _ sample: [Float], _ steps: Int) -> [Float] {
        let diffToPrev = counter % 2 == 1 ? 0 : trainSteps / steps / 2
        let prevT = t - diffToPrev
        let stageT = prkTimesteps[counter / 4 * 4]
        var output = output
        let acc = curModelOutput ?? [Float](repeating: 0, count: output.count)
        switch counter % 4 {
        case 0:
            let w = Float(1.0 / 6.0)
            curModelOutput = map2(acc, output) { (a, o) in a + w * o }
            ets.append(output)
            curSample = sample
        case 1, 2:
            let w = Float(1.0 / 3.0)
            curModelOutput = map2(acc, output) { (a, o) in a + w * o }
        default:
            let w = Float(1.0 / 6.0)
            output = map2(acc, output) { (a, o) in a + w * o }
            curModelOutput = nil
        }
        return prevSample(curSample ?? sample, stageT, prevT, output)
    }

    private mutating func stepPLMS(_ output: [Float], _ t: Int, _ sample: [Float], _ steps: Int) -> [Float] {
        var t = t
        var prevT = t - trainSteps / steps
        if counter != 1 {
            ets = Array(ets.suffix(3))
            ets.append(output)
        } else {
            prevT = t
            t += trainSteps / steps
        }
        var sample = sample
        let combined: [Float]
        let n = ets.count
        if n == 1 && counter == 0 {
            combined = output
            curSample = sample
        } else if n == 1 && counter == 1 {
            combined = map2(output, ets[n - 1]) { (o, e) in (o + e) / 2 }
            sample = curSample ?? sample
            curSample = nil
        } else if n == 2 {
            combined = map2(ets[1], ets[0]) { (e1, e2) in (3 * e1 - e2) / 2 }
        } else if n == 3 {
            combined = map3(ets[2], ets[1], ets[0]) { (e1, e2, e3) in (23 * e1 - 16 * e2 + 5 * e3) / 12 }
        } else {
            let w = Float(1.0 / 24.0)
            combined = (0..<output.count).map { i in
                w * (55 * ets[n - 1][i] - 59 * ets[n - 2][i] + 37 * ets[n - 3][i] - 9 * ets[n - 4][i])
            }
        }
        return prevSample(sample, t, prevT, combined)
    }

    /// Formula (9) of the PNDM paper: the transfer from t to prevT given an epsilon estimate.
    private func prevSample(_ sample: [Float], _ t: Int, _ prevT: Int, _ output: [Float]) -> [Float] {
        let alphaProdT = schedule.alphasCumprod[t]
        let alphaProdPrev = prevT >= 0 ? schedule.alphasCumprod[prevT] : finalAlphaCumprod
        let betaProdT = 1 - alphaProdT, betaProdPrev = 1 - alphaProdPrev
        let eps = predictionType == .vPrediction
            ? Parameterization.epsilon(.vPrediction, output: output, sample: sample, x0: [],
                                       alpha: alphaProdT.squareRoot(), sigma: betaProdT.squareRoot())
            : output
        let sampleCoeff = (alphaProdPrev / alphaProdT).squareRoot()
        let denom = alphaProdT * betaProdPrev.squareRoot() + (alphaProdT * betaProdT * alphaProdPrev).squareRoot()
        let diff = alphaProdPrev - alphaProdT
        return map2(sample, eps) { (s, e) in sampleCoeff * s - diff * e / denom }
    }
}
