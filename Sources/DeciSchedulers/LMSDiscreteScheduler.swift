import DeciRandom

/// Linear multistep in sigma space: the update integrates the Lagrange polynomial through the last
/// `order` derivatives. Matches diffusers `scheduling_lms_discrete.py` (no zero-SNR option there);
/// diffusers integrates with `scipy.integrate.quad`, which is exact for these polynomials, as is the
/// Gauss-Legendre rule used here.
public struct LMSDiscreteScheduler: VESigmaScheduler {
    public let settings: ScheduleSettings
    public let useKarrasSigmas: Bool

    /// The multistep order (diffusers' `step(order=4)` default).
    public var lmsOrder = 4

    var timeline: SigmaTimeline
    private var derivatives: [[Float]] = []

    public init(config: SchedulerConfig) throws(SchedulerError) {
        try refuseUnsupportedSigmaOptions(config, scheduler: Self.className)
        settings = try ScheduleSettings(config: config, zeroSNR: .absent, spacing: .linspace)
        useKarrasSigmas = config.useKarrasSigmas ?? false
        timeline = Self.trainingTimeline(settings.schedule)
    }

    public mutating func setTimesteps(_ steps: Int) throws(SchedulerError) {
        timeline = try veTimeline(steps: steps, karras: useKarrasSigmas)
        derivatives = []
    }

    /// Integral over [sigma_t, sigma_{t+1}] of the Lagrange basis polynomial for node `current`
    /// among sigma_t, sigma_{t-1}, ..., sigma_{t-order+1}.
    func lmsCoefficient(order: Int, t: Int, current: Int) -> Double {
        let s = sigmaSchedule.map { Double($0) }
        func basis(_ tau: Double) -> Double {
            var prod = 1.0
            for k in 0..<order where k != current {
                prod *= (tau - s[t - k]) / (s[t - current] - s[t - k])
            }
            return prod
        }
        // Three-point Gauss-Legendre is exact up to degree 5; the basis has degree <= 3.
        let a = s[t], b = s[t + 1]
        let mid = (a + b) / 2, half = (b - a) / 2
        let x = (3.0 / 5.0).squareRoot()
        return half * (8.0 / 9.0 * basis(mid) + 5.0 / 9.0 * (basis(mid - half * x) + basis(mid + half * x)))
    }

    public mutating func step(modelOutput: [Float], timestep: Float, sample: [Float],
                              noise: inout some RandomSource) throws(SchedulerError) -> SchedulerOutput {
        let i = try stepIndex(modelOutput: modelOutput, sample: sample, timestep: timestep)
        let sigma = sigmaSchedule[i]
        let x0 = Parameterization.x0VE(predictionType, output: modelOutput, sample: sample, sigma: sigma)
        derivatives.append(map2(sample, x0) { (s, x) in (s - x) / sigma })
        if derivatives.count > lmsOrder { derivatives.removeFirst() }
        let order = min(i + 1, lmsOrder)
        var total = [Float](repeating: 0, count: sample.count)
        for (k, d) in zip(0..<order, derivatives.reversed()) {
            let c = Float(lmsCoefficient(order: order, t: i, current: k))
            total = map2(total, d) { (acc, v) in acc + c * v }
        }
        let prev = map2(sample, total) { (s, v) in s + v }
        index.step = i + 1
        return SchedulerOutput(prevSample: prev, predOriginalSample: x0)
    }
}
