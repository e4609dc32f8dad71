function [X, info] = femfreq_solve(K, C, M, b, freqs, P, output_dofs, varargin)
%FEMFREQ_SOLVE  Frequency response of MATLAB matrices, swept by femfreq (Python, dask).
%   X = FEMFREQ_SOLVE(K, C, M, B, FREQS, P, OUTPUT_DOFS) solves
%
%       ((1 + i g) K + i w C - w^2 M) x(w) = P(f) b,   w = 2 pi f,
%
%   at every frequency f of FREQS (Hz) and returns X, the n_output x n_freq complex
%   response at OUTPUT_DOFS (1-based). K, C, M are n x n real (sparse or full; C may
%   be [] for no viscous damping), B is n x 1 (real or complex) and P has one complex
%   value per frequency (or one value for all).
%
%   [X, INFO] = FEMFREQ_SOLVE(...) also returns INFO with freqs_hz, rel_residual and
%   backward_error (one per frequency) and output_dofs (1-based).
%
%   Name/value options:
%     'Scheduler'  'local' (default: an embedded dask LocalCluster on this computer),
%                  'none' (no dask, solve in the Python process), or the address of a
%                  running dask scheduler, e.g. 'tcp://10.0.0.5:8786'
%     'HostFile'   a file of host names: start the dask cluster over SSH on them
%     'Workers'    number of workers of the embedded cluster (default: one per core)
%     'Method'     'direct' (default) or 'fast' (certified reduced-order sweep)
%     'Solver'     'auto' (default), 'superlu' or 'pardiso'
%     'Output'     also keep femfreq's HDF5 result file here (h5read-able)
%     'G'          structural damping factor g (default 0)
%     'Route'      'py' (MATLAB's py. interface, in memory; the default in MATLAB) or
%                  'file' (write a .mat, run `femfreq sweep --matrices`, read the .mat
%                  result; needs no py. interface and has no 2 GB out-of-process limit;
%                  the default in GNU Octave, which has no py. interface)
%     'Command'    the femfreq command of the file route (default 'femfreq'; e.g.
%                  '"C:\Python311\python.exe" -m femfreq')
%     'Version'    .mat version of the file route, '-v7' (default) or '-v7.3'
%
%   The py route sends each sparse matrix as its find() triplets (1-based: femfreq
%   converts the indices) and calls the single bridge function
%   femfreq.matlab.solve_triplets; every dask object stays in Python. It needs
%   MATLAB R2023b or later (the first release whose py. interface takes Python 3.11,
%   femfreq's minimum) with pyenv pointing at a Python that has femfreq installed
%   (see docs/matlab.md). The file route runs the femfreq command and shows its
%   error message when it fails. Needs matlab/private/ beside it: copy the whole folder.
%
%   Example:
%     [K, M, free] = femfreq_rod_model('sat.node', '', 1e7, 0.1, 'reference', 'FixLine', [16 2 31 2]);
%     b = zeros(size(K, 1), 1); b(10) = -1;
%     X = femfreq_solve(K, 0.004 * K, M, b, linspace(1, 500, 200), 1, [10 11], 'Workers', 2);

default_route = 'py';
if exist('OCTAVE_VERSION', 'builtin') ~= 0
  default_route = 'file';  % Octave has no py. interface
end
opts = parse_options(varargin, {'Scheduler', 'local'; 'HostFile', ''; 'Workers', []; 'Method', 'direct'; ...
                                 'Solver', 'auto'; 'Output', ''; 'G', 0; 'Route', default_route; ...
                                 'Command', 'femfreq'; 'Version', '-v7'}, 'femfreq:solve');

n = size(K, 1);
if size(K, 2) ~= n
  error('femfreq:solve:size', 'K must be square (has size %d x %d)', size(K, 1), size(K, 2));
end
if ~isequal(size(M), [n n])
  error('femfreq:solve:size', 'M has size %d x %d but K has size %d x %d', size(M, 1), size(M, 2), n, n);
end
if ~isempty(C) && ~isequal(size(C), [n n])
  error('femfreq:solve:size', 'C has size %d x %d but K has size %d x %d', size(C, 1), size(C, 2), n, n);
end
if ~isreal(K) || ~isreal(M) || ~isreal(C)
  error('femfreq:solve:complex', 'K, C and M must be real; give structural damping as ''G'' (K (1 + i g))');
end
if numel(b) ~= n
  error('femfreq:solve:size', 'b has %d values but K is %d x %d', numel(b), n, n);
end
if isempty(output_dofs)
  error('femfreq:solve:outputs', 'output_dofs is empty: give at least one 1-based output DOF');
end

switch lower(opts.route)
  case 'py'
    [X, info] = solve_py(K, C, M, b, freqs, P, output_dofs, opts);
  case 'file'
    [X, info] = solve_file(K, C, M, b, freqs, P, output_dofs, opts);
  otherwise
    error('femfreq:solve:route', 'Route must be ''py'' or ''file'' (got ''%s'')', opts.route);
end
end


function v = row(x)
% a 1 x N double row vector: every MATLAB release can pass it to Python
v = reshape(full(double(x)), 1, []);
end


function v = py_or_none(x)
if isempty(x)
  v = py.None;
else
  v = x;
end
end


function [X, info] = solve_py(K, C, M, b, freqs, P, output_dofs, opts)
% MATLAB -> Python: find() triplets and real/imaginary parts; Python -> MATLAB: array.array
[Ki, Kj, Kv] = find(K);
[Mi, Mj, Mv] = find(M);
if isempty(C) || nnz(C) == 0
  Ci = py.None;
  Cj = py.None;
  Cv = py.None;
  C_size = py.None;
else
  [Ci, Cj, Cv] = find(C);
  Ci = row(Ci);
  Cj = row(Cj);
  Cv = row(Cv);
  C_size = int64(size(C));
end
b_im = py.None;
if ~isreal(b)
  b_im = row(imag(b));
end
P_im = py.None;
if ~isreal(P)
  P_im = row(imag(P));
end
workers = py.None;
if ~isempty(opts.workers)
  workers = int64(opts.workers);
end
kw = pyargs('b_im', b_im, 'g', double(opts.g), 'C_size', C_size, 'M_size', int64(size(M)), ...
            'method', opts.method, 'solver', opts.solver, 'scheduler', opts.scheduler, ...
            'hostfile', py_or_none(opts.hostfile), 'n_workers', workers, ...
            'out', py_or_none(opts.output), 'matlab_arrays', true);
r = py.femfreq.matlab.solve_triplets(row(Ki), row(Kj), row(Kv), Ci, Cj, Cv, row(Mi), row(Mj), row(Mv), ...
                                     int64(size(K)), row(real(b)), row(freqs), row(real(P)), P_im, ...
                                     row(output_dofs), kw);
s = struct(r);
shape = cellfun(@double, cell(s.shape));
X = reshape(double(s.response_re), shape) + 1i * reshape(double(s.response_im), shape);
info = struct('freqs_hz', double(s.freqs_hz).', 'rel_residual', double(s.rel_residual).', ...
              'backward_error', double(s.backward_error).', 'output_dofs', double(s.output_dofs).');
end


function [X, info] = solve_file(K, C, M, b, freqs, P, output_dofs, opts)
% write a .mat, run `femfreq sweep --matrices`, read the .mat result
work = tempname();
mkdir(work);
cleanup = onCleanup(@() remove_dir(work));
in_file = fullfile(work, 'input.mat');
out_file = fullfile(work, 'result.mat');
femfreq_write_input(in_file, K, C, M, b, freqs, P, output_dofs, 'G', opts.g, 'Version', opts.version);
cmd = sprintf('%s sweep --matrices "%s" -o "%s" --no-progress --overwrite --method %s --solver %s', ...
              opts.command, in_file, out_file, opts.method, opts.solver);
if ~isempty(opts.hostfile)
  cmd = sprintf('%s --hostfile "%s"', cmd, opts.hostfile);
elseif any(strcmpi(opts.scheduler, {'none', 'serial', ''}))
  cmd = [cmd ' --serial'];
elseif ~strcmpi(opts.scheduler, 'local')
  cmd = sprintf('%s --scheduler %s', cmd, opts.scheduler);
end
if ~isempty(opts.workers)
  cmd = sprintf('%s --workers %d', cmd, round(opts.workers));
end
% 2>&1: femfreq prints its error on stderr, which system() does not return (Octave drops it)
[status, text] = system([cmd ' 2>&1']);
if status ~= 0
  error('femfreq:solve:command', 'femfreq failed (exit code %d): %s\n  command: %s', status, ...
        strtrim(text), cmd);
end
R = femfreq_read_result(out_file);
if ~isempty(opts.output)
  copyfile(fullfile(work, 'result.h5'), opts.output);
end
X = R.response;
info = struct('freqs_hz', R.freqs_hz, 'rel_residual', [], 'backward_error', [], 'output_dofs', []);
fields = {'rel_residual', 'backward_error', 'output_dofs'};
for k = 1:numel(fields)
  if isfield(R, fields{k})
    info.(fields{k}) = R.(fields{k});
  end
end
end


function remove_dir(d)
if exist(d, 'dir')
  confirm = confirm_recursive_rmdir_off();
  rmdir(d, 's');
  confirm_recursive_rmdir_restore(confirm);
end
end


function old = confirm_recursive_rmdir_off()
% Octave asks before rmdir(d, 's') unless confirm_recursive_rmdir is false
old = [];
if exist('OCTAVE_VERSION', 'builtin') ~= 0
  old = confirm_recursive_rmdir(false);
end
end


function confirm_recursive_rmdir_restore(old)
if ~isempty(old)
  confirm_recursive_rmdir(old);
end
end
