function [K, M, free, info] = femfreq_rod_model(node_file, ele_file, E, rho, area, varargin)
%FEMFREQ_ROD_MODEL  Reduced stiffness and mass of the 2D rod model of a Triangle mesh.
%   [K, M, FREE, INFO] = FEMFREQ_ROD_MODEL(NODE_FILE, ELE_FILE, E, RHO, AREA)
%   reads a Triangle mesh (NODE_FILE .node and ELE_FILE .ele; ELE_FILE may be ''
%   for the .ele beside the .node), makes every unique triangle edge a rod and
%   assembles the same model as femfreq's Python side (femfreq.model.rods, femfreq.model):
%
%     - node i (1-based) has the DOF 2*i-1 (x) and 2*i (y);
%     - stiffness of a rod of length L and direction (c, s):
%         E*A/L * [T -T; -T T],  T = [c*c c*s; c*s s*s];
%     - lumped mass: half of rho*A*L on each end node, in x and in y (default), or
%       the consistent mass rho*A*L/6 * [2 0 1 0; 0 2 0 1; 1 0 2 0; 0 1 0 2];
%     - the fixed DOF are removed; the free DOF keep their increasing order.
%
%   E, RHO and AREA are scalars or one value per rod (in the order of INFO.edges:
%   unique(sort(edges, 2), 'rows')). AREA may be 'reference': sqrt(2 / n_dof) with
%   n_dof = 2 * number of nodes (the reference write-up's choice).
%
%   Name/value options:
%     'Mass'      'lumped' (default) or 'consistent'
%     'FixNodes'  1-based node numbers to fix
%     'FixBox'    k x 4 rows [xmin ymin xmax ymax]: fix the nodes inside (inclusive)
%     'FixLine'   k x 4 rows [x0 y0 x1 y1]: fix the nodes within 'LineTol' of the segment
%     'LineTol'   default 1e-9 * max(1, max(abs(node coordinates)))
%     'Fix'       components fixed at the selected nodes: 'xy' (default), 'x' or 'y'
%
%   Outputs:
%     K, M   sparse n_free x n_free (reduced) stiffness and mass
%     FREE   1 x n_free full DOF numbers (1-based) of the free DOF, increasing
%     INFO   struct: points (n x 2), triangles (t x 3, 1-based), edges (m x 2, 1-based),
%            lengths (m x 1), area, fixed (full 1-based DOF), n_dof, total_mass,
%            full_to_free (2n x 1: free index of each full DOF, 0 if fixed)
%
%   The .node/.ele files may number from 0 or from 1, carry attributes and boundary
%   markers, and have # comments. Runs in MATLAB R2023b or later and GNU Octave.
%   Needs matlab/private/ beside it (the shared option parser): copy the whole folder.
%
%   Example:
%     [K, M, free] = femfreq_rod_model('sat.node', '', 1e7, 0.1, 'reference', ...
%                                      'FixLine', [16 2 31 2]);

opts = parse_options(varargin, {'Mass', 'lumped'; 'FixNodes', []; 'FixBox', zeros(0, 4); ...
                                 'FixLine', zeros(0, 4); 'LineTol', []; 'Fix', 'xy'}, 'femfreq:rod_model');
if nargin < 2 || isempty(ele_file)
  ele_file = regexprep(node_file, '\.node$', '');
  ele_file = [ele_file '.ele'];
end

[points, base] = read_node(node_file);
n_nodes = size(points, 1);
tri = read_ele(ele_file, base, n_nodes);

% unique undirected edges, each row sorted, rows sorted (= femfreq.mesh.Mesh.edges)
pairs = [tri(:, [1 2]); tri(:, [2 3]); tri(:, [3 1])];
edges = unique(sort(pairs, 2), 'rows');
m = size(edges, 1);
n_dof = 2 * n_nodes;

if isa(area, 'string')
  area = char(area);
end
if ischar(area)
  if ~strcmpi(area, 'reference')
    error('femfreq:rod_model:area', 'AREA must be a number, one per rod, or ''reference'' (got ''%s'')', area);
  end
  area = sqrt(2 / n_dof);
end
E = rod_property('E', E, m);
rho = rod_property('rho', rho, m);
area = rod_property('area', area, m);

% geometry
d = points(edges(:, 2), :) - points(edges(:, 1), :);
L = hypot(d(:, 1), d(:, 2));
scale = max(max(abs(points(:))), 1e-300);
if any(L <= 1e-14 * scale)
  r = find(L <= 1e-14 * scale, 1);
  error('femfreq:rod_model:zeroLength', 'rod %d (nodes %d and %d) has zero length (duplicate nodes?)', ...
        r, edges(r, 1), edges(r, 2));
end
c = d(:, 1) ./ L;
s = d(:, 2) ./ L;

% element DOF (m x 4): x1 y1 x2 y2
dofs = [2 * edges(:, 1) - 1, 2 * edges(:, 1), 2 * edges(:, 2) - 1, 2 * edges(:, 2)];

% stiffness: 16 entries per rod, k = E A / L times +-T
k = (E .* area) ./ L;
T = [(c .* c) .* k, (c .* s) .* k, (c .* s) .* k, (s .* s) .* k];  % T(1,1) T(2,1) T(1,2) T(2,2)
[lr, lc] = ndgrid(1:4, 1:4);
lr = lr(:).';
lc = lc(:).';
t_index = mod(lr - 1, 2) + 1 + 2 * mod(lc - 1, 2);
t_sign = 1 - 2 * xor(lr > 2, lc > 2);
I = dofs(:, lr);
J = dofs(:, lc);
V = bsxfun(@times, T(:, t_index), t_sign);
K = sparse(I(:), J(:), V(:), n_dof, n_dof);

% mass
m_rod = rho .* area .* L;
if strcmpi(opts.mass, 'lumped')
  node_mass = 0.5 * (accumarray(edges(:, 1), m_rod, [n_nodes 1]) + accumarray(edges(:, 2), m_rod, [n_nodes 1]));
  diag_mass = reshape([node_mass node_mass].', [], 1);
  M = sparse(1:n_dof, 1:n_dof, diag_mass, n_dof, n_dof);
elseif strcmpi(opts.mass, 'consistent')
  mr = [1 2 3 4 1 3 2 4];
  mc = [1 2 3 4 3 1 4 2];
  factors = [2 2 2 2 1 1 1 1] / 6;
  I = dofs(:, mr);
  J = dofs(:, mc);
  V = m_rod * factors;
  M = sparse(I(:), J(:), V(:), n_dof, n_dof);
else
  error('femfreq:rod_model:mass', '''Mass'' must be ''lumped'' or ''consistent'' (got ''%s'')', opts.mass);
end

% constraints
fixed_nodes = select_nodes(points, opts);
switch lower(opts.fix)
  case 'xy'
    comps = [-1 0];
  case 'x'
    comps = -1;
  case 'y'
    comps = 0;
  otherwise
    error('femfreq:rod_model:fix', '''Fix'' must be ''x'', ''y'' or ''xy'' (got ''%s'')', opts.fix);
end
fixed = bsxfun(@plus, 2 * fixed_nodes(:), comps);
fixed = unique(fixed(:)).';
free = setdiff(1:n_dof, fixed);
K = K(free, free);
M = M(free, free);

full_to_free = zeros(n_dof, 1);
full_to_free(free) = 1:numel(free);
info = struct('points', points, 'triangles', tri, 'edges', edges, 'lengths', L, ...
              'area', area, 'fixed', fixed, 'n_dof', n_dof, 'total_mass', sum(m_rod), ...
              'full_to_free', full_to_free);
end


function v = rod_property(name, v, m)
v = double(v(:));
if numel(v) == 1
  v = repmat(v, m, 1);
elseif numel(v) ~= m
  error('femfreq:rod_model:property', '%s must be a scalar or have one value per rod (%d); got %d values', ...
        name, m, numel(v));
end
if any(~isfinite(v) | v <= 0)
  error('femfreq:rod_model:property', '%s must be positive and finite', name);
end
end


function nodes = select_nodes(points, opts)
x = points(:, 1);
y = points(:, 2);
mask = false(size(x));
if ~isempty(opts.fixnodes)
  ids = opts.fixnodes(:);
  if any(ids < 1 | ids > numel(x) | mod(ids, 1) ~= 0)
    error('femfreq:rod_model:fixNodes', 'FixNodes must be 1-based node numbers in 1..%d', numel(x));
  end
  mask(ids) = true;
end
for r = 1:size(opts.fixbox, 1)
  b = opts.fixbox(r, :);
  sel = x >= b(1) & x <= b(3) & y >= b(2) & y <= b(4);
  if ~any(sel)
    error('femfreq:rod_model:emptySelection', 'FixBox [%g %g %g %g] selects no node', b);
  end
  mask = mask | sel;
end
tol = opts.linetol;
if isempty(tol)
  tol = 1e-9 * max(max(abs(points(:))), 1);
end
for r = 1:size(opts.fixline, 1)
  ln = opts.fixline(r, :);
  dx = ln(3) - ln(1);
  dy = ln(4) - ln(2);
  ll = dx * dx + dy * dy;
  if ll == 0
    t = zeros(size(x));
  else
    t = min(max(((x - ln(1)) * dx + (y - ln(2)) * dy) / ll, 0), 1);
  end
  sel = hypot(x - (ln(1) + t * dx), y - (ln(2) + t * dy)) <= tol;
  if ~any(sel)
    error('femfreq:rod_model:emptySelection', 'FixLine [%g %g %g %g] selects no node (tol %g)', ln, tol);
  end
  mask = mask | sel;
end
nodes = find(mask);
end


function lines = data_lines(file)
% the non-blank lines of a Triangle file, without # comments
if ~exist(file, 'file')
  error('femfreq:rod_model:noFile', '%s: no such file', file);
end
txt = fileread(file);
txt = regexprep(txt, '#[^\n]*', '');
lines = regexp(txt, '\r?\n', 'split');
lines = lines(~cellfun(@isempty, regexprep(lines, '\s', '')));
if isempty(lines)
  error('femfreq:rod_model:read', '%s: the file is empty', file);
end
end


function [header, rows] = read_table(file, n_header, what)
% header numbers (padded with zeros to n_header) and the rows of a Triangle table
lines = data_lines(file);
header = sscanf(lines{1}, '%f').';
if isempty(header) || numel(header) > n_header
  error('femfreq:rod_model:read', '%s: bad %s header line ''%s''', file, what, lines{1});
end
header = [header zeros(1, n_header - numel(header))];
body = sscanf(sprintf('%s\n', lines{2:end}), '%f');
n = header(1);
if n == 0 || mod(numel(body), n) ~= 0
  error('femfreq:rod_model:read', '%s: %d numbers do not make %d %s rows', file, numel(body), n, what);
end
rows = reshape(body, [], n).';
end


function [points, base] = read_node(file)
[h, rows] = read_table(file, 4, 'vertex');
ncol = 3 + h(3) + h(4);
if h(2) ~= 2 || size(rows, 2) ~= ncol
  error('femfreq:rod_model:read', '%s: expected %d vertices of %d numbers in 2-D (header %s)', ...
        file, h(1), ncol, mat2str(h));
end
base = rows(1, 1);
if ~(base == 0 || base == 1) || any(rows(:, 1) ~= base + (0:h(1) - 1).')
  error('femfreq:rod_model:read', '%s: vertices must be numbered consecutively from 0 or 1', file);
end
points = rows(:, 2:3);
end


function tri = read_ele(file, base, n_nodes)
[h, rows] = read_table(file, 3, 'triangle');
if h(2) ~= 3 || size(rows, 2) ~= 4 + h(3)
  error('femfreq:rod_model:read', '%s: expected %d 3-node triangles (header %s)', file, h(1), mat2str(h));
end
tri = rows(:, 2:4) - base + 1;
if any(tri(:) < 1 | tri(:) > n_nodes)
  error('femfreq:rod_model:read', '%s: a triangle refers to a vertex outside %d..%d', file, base, base + n_nodes - 1);
end
end
