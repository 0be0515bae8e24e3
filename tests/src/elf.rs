//! Just enough ELF to tell whether a program is static: no PT_INTERP
//! program header and no DT_NEEDED entry.

use std::path::Path;

#[derive(Debug, PartialEq, Eq)]
pub struct Facts {
    pub machine: u16,
    pub interp: bool,
    pub needed: usize,
}

impl Facts {
    pub fn is_static(&self) -> bool {
        !self.interp && self.needed == 0
    }
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;

pub fn read(path: &Path) -> Result<Facts, String> {
    let b = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    parse(&b).ok_or_else(|| format!("{}: not a little-endian ELF file", path.display()))
}

pub fn parse(b: &[u8]) -> Option<Facts> {
    if b.get(..4)? != b"\x7fELF" || *b.get(5)? != 1 {
        return None;
    }
    let wide = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let word = |o: usize| {
        if wide {
            u64_at(o)
        } else {
            u32_at(o).map(u64::from)
        }
    };
    let machine = u16_at(18)?;
    let (phoff, phentsize, phnum) = if wide {
        (
            u64_at(32)? as usize,
            u16_at(54)? as usize,
            u16_at(56)? as usize,
        )
    } else {
        (
            u32_at(28)? as usize,
            u16_at(42)? as usize,
            u16_at(44)? as usize,
        )
    };
    let mut facts = Facts {
        machine,
        interp: false,
        needed: 0,
    };
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        match u32_at(ph)? {
            PT_INTERP => facts.interp = true,
            PT_DYNAMIC => {
                let (off, size) = if wide {
                    (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize)
                } else {
                    (u32_at(ph + 4)? as usize, u32_at(ph + 16)? as usize)
                };
                let entry = if wide { 16 } else { 8 };
                for e in (off..off.checked_add(size)?).step_by(entry) {
                    let tag = word(e)?;
                    if tag == 0 {
                        break;
                    }
                    if tag == DT_NEEDED {
                        facts.needed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    Some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_program_is_not_static() {
        // The test binary itself links libc dynamically on a gnu host.
        let me = read(&std::env::current_exe().unwrap()).unwrap();
        if cfg!(target_env = "gnu") {
            assert!(me.interp && me.needed > 0, "{me:?}");
        }
        assert!(parse(b"not an elf").is_none());
        assert!(parse(b"\x7fELF\x02\x01").is_none(), "truncated");
    }
}
