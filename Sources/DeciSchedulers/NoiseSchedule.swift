import Foundation

// Shared noise-schedule maths: beta schedules, zero-terminal-SNR rescaling, alphas_cumprod, timestep
// spacings and sigma schedules. Matches the helpers every diffusers 0.42 scheduler repeats
// (`betas_for_alpha_bar`, `rescale_zero_terminal_snr`, the `set_timesteps` spacing branches,
// `_convert_to_karras`, `_sigma_to_t`). Values that diffusers keeps in float32 torch tensors are
// computed in Float in the same order; values it computes with numpy float64 are computed in Double.

/// The training-time noise schedule: betas and their cumulative alpha products.
public struct NoiseSchedule: Sendable, Equatable {
    public let betas: [Float]
    public let alphasCumprod: [Float]

    /// Builds the schedule as diffusers' scheduler constructors do.
    /// - Parameter zeroSNRFloor: the Euler/DPM/UniPC family replace the final alpha_bar (exactly 0
    ///   after zero-SNR rescaling) by 2^-24 so that sigma stays finite; DDIM-family schedulers do not.
    public init(numTrainTimesteps: Int, betaStart: Double, betaEnd: Double, schedule: BetaSchedule,
                trainedBetas: [Double]?, rescaleZeroSNR: Bool, zeroSNRFloor: Bool) throws(SchedulerError) {
        guard numTrainTimesteps >= 2 else {
            throw .invalidConfigValue(key: "num_train_timesteps", value: "\(numTrainTimesteps)", allowed: ["an integer >= 2"])
        }
        var betas: [Float]
        if let trained = trainedBetas {
            guard trained.count == numTrainTimesteps else {
                throw .sizeMismatch(parameter: "trained_betas", expected: numTrainTimesteps, actual: trained.count)
            }
            betas = trained.map { Float($0) }
        } else {
            switch schedule {
            case .linear:
                betas = Self.torchLinspace(Float(betaStart), Float(betaEnd), count: numTrainTimesteps)
            case .scaledLinear:
                // Python `x ** 0.5` calls libm pow, so use it too rather than sqrt.
                betas = Self.torchLinspace(Float(pow(betaStart, 0.5)), Float(pow(betaEnd, 0.5)), count: numTrainTimesteps)
                    .map { $0 * $0 }
            case .squaredcosCapV2:
                betas = Self.cosineBetas(count: numTrainTimesteps)
            }
        }
        if rescaleZeroSNR { betas = Self.rescaleZeroTerminalSNR(betas) }
        var cumprod = Self.cumulativeProduct(betas.map { 1 - $0 })
        if rescaleZeroSNR && zeroSNRFloor { cumprod[cumprod.count - 1] = 0x1p-24 }
        self.betas = betas
        self.alphasCumprod = cumprod
    }

    /// How a diffusers scheduler class treats `rescale_betas_zero_snr`.
    enum ZeroSNROption: Sendable {
        /// The class has no such option (PNDM, Heun, LMS): the key is ignored.
        case absent
        /// Rescaled as the config asks (the DDIM family).
        case plain
        /// Rescaled as the config asks, with the final alpha_bar floored at 2^-24 (the sigma schedulers).
        case floored
    }

    /// Builds the schedule from a scheduler config as a diffusers constructor does: a key the config
    /// lacks takes the class's default, DDPM's (1000 steps, linear from 0.0001 to 0.02) unless given.
    init(config: SchedulerConfig, betaStart: Double = 0.0001, betaEnd: Double = 0.02,
         betaSchedule: BetaSchedule = .linear, zeroSNR: ZeroSNROption) throws(SchedulerError) {
        try self.init(numTrainTimesteps: config.numTrainTimesteps ?? 1000, betaStart: config.betaStart ?? betaStart,
                      betaEnd: config.betaEnd ?? betaEnd, schedule: config.betaSchedule ?? betaSchedule,
                      trainedBetas: config.trainedBetas,
                      rescaleZeroSNR: zeroSNR != .absent && (config.rescaleBetasZeroSnr ?? false),
                      zeroSNRFloor: zeroSNR == .floored)
    }

    /// The number of training timesteps (`num_train_timesteps`).
    var numTrainTimesteps: Int { betas.count }

    /// `torch.linspace` for float32 on CPU: a float step, each value `start + step*i` (first half) or
    /// `end - step*(n-1-i)` (second half) rounded once, as the fused multiply-add kernel does.
    static func torchLinspace(_ start: Float, _ end: Float, count: Int) -> [Float] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Float(count - 1)
        let half = count / 2
        return (0..<count).map { i in
            i < half ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - 1 - i))
        }
    }

    /// Betas of the cosine alpha_bar, capped at `maxBeta`; computed in Double like diffusers, then float32.
    static func cosineBetas(count: Int, maxBeta: Double = 0.999) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<count).map { i in
            let t1 = Double(i) / Double(count), t2 = Double(i + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), maxBeta))
        }
    }

    /// Lin et al. 2023, algorithm 1: shift and scale sqrt(alpha_bar) so the last one is exactly 0 while
    /// the first is unchanged. Float throughout, as diffusers runs it on a float32 tensor.
    static func rescaleZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let cumprod = cumulativeProduct(betas.map { 1 - $0 })
        var sqrtBar = cumprod.map { $0.squareRoot() }
        let first = sqrtBar[0], last = sqrtBar[sqrtBar.count - 1]
        let scale = first / (first - last)
        for i in sqrtBar.indices { sqrtBar[i] = (sqrtBar[i] - last) * scale }
        let bar = sqrtBar.map { $0 * $0 }
        var out = [Float](repeating: 0, count: bar.count)
        out[0] = 1 - bar[0]
        for i in 1..<bar.count { out[i] = 1 - bar[i] / bar[i - 1] }
        return out
    }

    /// `torch.cumprod` on a CPU float32 tensor accumulates in double and rounds each output.
    static func cumulativeProduct(_ values: [Float]) -> [Float] {
        var acc = 1.0
        return values.map { v in
            acc *= Double(v)
            return Float(acc)
        }
    }

    /// sigma = sqrt((1 - alpha_bar) / alpha_bar) for every training timestep, in float32.
    public var trainSigmas: [Float] {
        alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    /// The sigma after the last step of the sigma schedulers' `final_sigmas_type`: 0, or the
    /// smallest training sigma.
    func finalSigma(_ type: FinalSigmasType) -> Float {
        switch type {
        case .zero: return 0
        case .sigmaMin:
            let a0 = alphasCumprod[0]
            return ((1 - a0) / a0).squareRoot()
        }
    }
}

// MARK: - numpy reproductions (float64)

enum NumPy {
    /// `np.arange(start, stop, step)` for floats: length `ceil((stop-start)/step)`, values
    /// `start + i*delta` where delta is re-derived from the first two entries, as numpy fills it.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let length = Int(max(0, ((stop - start) / step).rounded(.up)))
        guard length > 0 else { return [] }
        guard length > 1 else { return [start] }
        let delta = (start + step) - start
        return [start, start + step] + (2..<length).map { start + Double($0) * delta }
    }

    /// `np.linspace(start, stop, num, endpoint:)` in float64.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int, endpoint: Bool = true) -> [Double] {
        guard num > 0 else { return [] }
        let div = endpoint ? num - 1 : num
        guard div > 0 else { return [start] }
        let step = (stop - start) / Double(div)
        var out = (0..<num).map { Double($0) * step + start }
        if endpoint && num > 1 { out[num - 1] = stop }
        return out
    }

    /// `np.round` rounds halves to even.
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `np.interp(x, np.arange(len(fp)), fp)`.
    static func interpOverIndices(_ x: Double, _ fp: [Double]) -> Double {
        let n = fp.count
        if x.isNaN { return x }
        if x <= 0 { return fp[0] }
        if x >= Double(n - 1) { return fp[n - 1] }
        let j = Int(x.rounded(.down))
        if Double(j) == x { return fp[j] }
        let slope = fp[j + 1] - fp[j]
        var r = slope * (x - Double(j)) + fp[j]
        if r.isNaN {
            r = slope * (x - Double(j + 1)) + fp[j + 1]
            if r.isNaN && fp[j] == fp[j + 1] { r = fp[j] }
        }
        return r
    }
}

// MARK: - Timestep spacings

enum Spacing {
    /// The spacing shared by DDIM, DDPM, PNDM and the Euler/Heun/LMS family, descending, unrounded
    /// for `linspace` (callers round or cast as their diffusers counterpart does).
    static func timesteps(_ spacing: TimestepSpacing, steps: Int, trainSteps: Int, offset: Int) -> [Double] {
        switch spacing {
        case .linspace:
            return NumPy.linspace(0, Double(trainSteps - 1), steps).reversed()
        case .leading:
            let ratio = trainSteps / steps
            return (0..<steps).reversed().map { Double($0 * ratio + offset) }
        case .trailing:
            let ratio = Double(trainSteps) / Double(steps)
            return NumPy.arange(Double(trainSteps), 0, -ratio).map { NumPy.round($0) - 1 }
        }
    }

    /// The spacing of DPM-Solver and UniPC: N+1 points with the last dropped, and `last` (the
    /// lambda-clipped end) in place of the training length.
    static func multistepTimesteps(_ spacing: TimestepSpacing, steps: Int, trainSteps: Int, last: Int, offset: Int) -> [Int] {
        switch spacing {
        case .linspace:
            return NumPy.linspace(0, Double(last - 1), steps + 1).reversed().dropLast().map { Int(NumPy.round($0)) }
        case .leading:
            let ratio = last / (steps + 1)
            return (0...steps).reversed().dropLast().map { $0 * ratio + offset }
        case .trailing:
            let ratio = Double(trainSteps) / Double(steps)
            return NumPy.arange(Double(last), 0, -ratio).map { Int(NumPy.round($0)) - 1 }
        }
    }
}

// MARK: - Sigma schedules

enum Sigmas {
    /// Karras et al. (2022) rho-spaced sigmas from `sigmaMax` down to `sigmaMin`, float64.
    static func karras(sigmaMin: Double, sigmaMax: Double, count: Int, rho: Double = 7) -> [Double] {
        let minInvRho = pow(sigmaMin, 1 / rho), maxInvRho = pow(sigmaMax, 1 / rho)
        return NumPy.linspace(0, 1, count).map { pow(maxInvRho + $0 * (minInvRho - maxInvRho), rho) }
    }

    /// Fractional training timestep whose log-sigma matches `sigma` (linear in log sigma between
    /// neighbours); `logSigmas` are float32 logs of the training sigmas, ascending with t.
    static func sigmaToT(_ sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = log(max(sigma, 1e-10))
        // The last index whose log-sigma is <= logSigma (0 if none), capped so a neighbour exists.
        var low = 0
        for (i, ls) in logSigmas.enumerated() where logSigma - Double(ls) >= 0 { low = i }
        low = min(low, logSigmas.count - 2)
        let lo = Double(logSigmas[low]), hi = Double(logSigmas[low + 1])
        let w = min(max((lo - logSigma) / (lo - hi), 0), 1)
        return (1 - w) * Double(low) + w * Double(low + 1)
    }

    /// Float32 natural logs of the training sigmas, as `np.log` of a float32 array.
    static func logSigmas(_ trainSigmas: [Float]) -> [Float] {
        trainSigmas.map { Float(log(Double($0))) }
    }
}

extension Sigmas {
    /// The timesteps and sigmas (without the final one) of the Euler / Euler ancestral / Heun / LMS
    /// `set_timesteps`: float32 timesteps, sigmas interpolated in float64 from the training sigmas,
    /// optionally respaced to Karras sigmas (then timesteps follow the sigmas back through
    /// `sigmaToT`).
    static func veSchedule(_ schedule: NoiseSchedule, spacing: TimestepSpacing, steps: Int, offset: Int,
                           karras: Bool, sigmaMin: Double? = nil, sigmaMax: Double? = nil)
        -> (timesteps: [Float], sigmas: [Double]) {
        let trainSteps = schedule.numTrainTimesteps
        var timesteps: [Float]
        switch spacing {
        case .linspace:
            timesteps = NumPy.linspace(0, Double(trainSteps - 1), steps).reversed().map { Float($0) }
        case .leading, .trailing:
            // Integers, then the float32 offset/shift the diffusers code applies after its cast.
            timesteps = Spacing.timesteps(spacing, steps: steps, trainSteps: trainSteps, offset: offset).map { Float($0) }
        }
        let train = schedule.trainSigmas.map { Double($0) }
        var sigmas = timesteps.map { NumPy.interpOverIndices(Double($0), train) }
        if karras, let first = sigmas.first, let last = sigmas.last {
            sigmas = Sigmas.karras(sigmaMin: sigmaMin ?? last, sigmaMax: sigmaMax ?? first, count: steps)
            let logs = logSigmas(schedule.trainSigmas)
            timesteps = sigmas.map { Float(sigmaToT($0, logSigmas: logs)) }
        }
        return (timesteps, sigmas)
    }

    /// The `init_noise_sigma` of the VE schedulers: the largest sigma, or sqrt(sigma^2 + 1) for
    /// `leading` spacing, whose first timestep is not the noisiest one.
    static func initNoiseSigma(_ sigmas: [Float], spacing: TimestepSpacing) -> Float {
        let m = sigmas.max() ?? 0
        return spacing == .leading ? (m * m + 1).squareRoot() : m
    }
}
