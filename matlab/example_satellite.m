%EXAMPLE_SATELLITE  The satellite pyroshock run of `femfreq sweep satellite`, from MATLAB (or GNU Octave).
%   Builds the rod model of models/satellite.toml in MATLAB from its Triangle mesh, solves
%   the frequency sweep with femfreq (on a dask cluster) and goes back to the time domain.
%   Same model, level, load point, load direction, load history and outputs as the Python
%   run `femfreq sweep satellite`: the mesh, K, C, M and b are MATLAB data; only the sweep
%   runs in Python. Scratch files (the mesh) go to a temporary folder (tempname).
%
%   Settings (set any of these variables before running the script to override):
%     level      mesh refinement level of `femfreq mesh satellite` (default 3, the model's)
%     node_file  an existing .node file (its .ele beside it); default: written by
%                `femfreq mesh satellite --level LEVEL` into a temporary folder
%     n_fft      FFT length of the load history (default 4096, dt = 5e-4 s, as the model)
%     history    n_fft x 1 load history (default: femfreq's synthetic pyroshock,
%                femfreq.spectra.pyroshock, the model's history = "pyroshock")
%     route      'py' (MATLAB's py. interface, default in MATLAB) or 'file' (a .mat
%                file and the femfreq command; the default in Octave)
%     command    the femfreq command (default 'femfreq'; e.g. '"/path/to/python" -m femfreq')
%     solve_opts cell of extra femfreq_solve options, e.g. {'Scheduler', 'tcp://host:8786'}
%                or {'Workers', 4}; {'Scheduler', 'none'} solves without dask
%
%   Results left in the workspace: K, C, M, b, free, info, freqs, P, output_dofs, X
%   (n_out x n_freq complex response) and x_t (n_out x n_fft time response), equal to
%   the response and time_response of `femfreq sweep satellite` (transposed).

addpath(fileparts(mfilename('fullpath')));
is_octave = exist('OCTAVE_VERSION', 'builtin') ~= 0;
if ~exist('level', 'var')
  level = 3;
end
if ~exist('n_fft', 'var')
  n_fft = 4096;
end
if ~exist('route', 'var')
  if is_octave
    route = 'file';
  else
    route = 'py';
  end
end
if ~exist('command', 'var')
  command = 'femfreq';
end
if ~exist('solve_opts', 'var')
  solve_opts = {};
end
dt = 5e-4;

% 1. mesh: Triangle .node/.ele files from femfreq's satellite outline, in a scratch folder
if ~exist('node_file', 'var')
  scratch = tempname();
  mkdir(scratch);
  node_file = fullfile(scratch, 'sat.node');
  [status, text] = system(sprintf('%s mesh satellite --level %d -o "%s" 2>&1', command, level, node_file));
  if status ~= 0
    error('example_satellite:mesh', 'femfreq mesh failed: %s', strtrim(text));
  end
else
  scratch = '';
end

% 2. model (models/satellite.toml): E = 1e7, rho = 0.1, reference area, lumped mass,
%    C = 0.004 K, the adapter ring (y = 2, x 16..31) fixed
[K, M, free, info] = femfreq_rod_model(node_file, '', 1e7, 0.1, 'reference', ...
                                       'Mass', 'lumped', 'FixLine', [16 2 31 2]);
if ~isempty(scratch)
  delete(fullfile(scratch, 'sat.node'));
  delete(fullfile(scratch, 'sat.ele'));
  rmdir(scratch);
end
C = 0.004 * K;
p = info.points;

% load: a unit force at the release bolt, the node nearest the arm's elbow (7.6, 16.6),
% along the lower arm towards the bus: direction [1 0] (x)
[~, bolt] = min((p(:, 1) - 7.6) .^ 2 + (p(:, 2) - 16.6) .^ 2);
b_full = zeros(info.n_dof, 1);
b_full(2 * bolt - 1) = 1;
b = b_full(free);

% outputs: x and y of the instrument nodes within 1.5 of (23.5, 10.5)
near = find(hypot(p(:, 1) - 23.5, p(:, 2) - 10.5) <= 1.5);
output_full = reshape([2 * near - 1, 2 * near].', [], 1);
output_dofs = info.full_to_free(output_full);

% 3. load spectrum on the FFT grid (rfft bins, Nyquist included)
if ~exist('history', 'var')
  % femfreq.spectra.pyroshock(dt, n_fft): decaying sinusoids from t0 = 5 ms, peak 1
  comp = [62 0.45 0.060 0.3; 145 0.80 0.035 1.9; 238 1.00 0.022 4.1; 365 0.85 0.015 0.8; ...
          512 0.70 0.010 2.7; 695 0.55 0.007 5.2; 880 0.40 0.004 3.6];  % f (Hz), amplitude, decay (s), phase
  t = (0:n_fft - 1).' * dt - 0.005;
  history = zeros(n_fft, 1);
  on = t >= 0;
  for k = 1:size(comp, 1)
    history(on) = history(on) + comp(k, 2) * exp(-t(on) / comp(k, 3)) .* sin(2 * pi * comp(k, 1) * t(on) + comp(k, 4));
  end
  history = history / max(abs(history));
end
freqs = (0:n_fft / 2).' / (n_fft * dt);
P = fft(history(:), n_fft);
P = P(1:n_fft / 2 + 1);

% 4. the sweep, by femfreq
fprintf('satellite: %d nodes, %d rods, %d free DOF, %d frequencies, %d outputs\n', ...
        size(p, 1), size(info.edges, 1), size(K, 1), numel(freqs), numel(output_dofs));
tic;
[X, sweep_info] = femfreq_solve(K, C, M, b, freqs, P, output_dofs, 'Route', route, 'Command', command, ...
                                solve_opts{:});
fprintf('sweep: %.1f s, worst relative residual %.1e\n', toc, max(sweep_info.rel_residual));

% 5. back to the time domain (irfft of each row)
x_t = real(ifft([X, conj(X(:, end - 1:-1:2))], n_fft, 2));
[peak, where] = max(max(abs(x_t), [], 2));
fprintf('peak displacement %.3e at output DOF %d\n', peak, output_dofs(where));
