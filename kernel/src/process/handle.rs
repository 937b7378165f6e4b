//! A process's handle table: slots of kernel objects, each with a
//! generation that grows when the slot is freed. A handle names a slot
//! and the generation it was handed out at, so:
//!
//! - a handle to a free slot (closed, or never opened) is [`Error::BadHandle`];
//! - a handle to a slot reused since is [`Error::StaleHandle`];
//! - a handle to an object of another kind than the call takes is
//!   [`Error::WrongType`].

use alloc::vec::Vec;

use percore_abi::{Error, Handle, HandleKind};

/// The most handles one process holds.
pub const MAX_HANDLES: usize = 256;

/// What a handle can name: anything with a kind.
pub trait Object {
    fn kind(&self) -> HandleKind;
}

struct Slot<T> {
    generation: u32,
    object: Option<T>,
}

/// The table of one process.
pub struct HandleTable<T> {
    slots: Vec<Slot<T>>,
    open: usize,
}

impl<T: Object> Default for HandleTable<T> {
    fn default() -> Self {
        HandleTable {
            slots: Vec::new(),
            open: 0,
        }
    }
}

impl<T: Object> HandleTable<T> {
    /// Puts `object` in a free slot (the lowest) and names it.
    pub fn insert(&mut self, object: T) -> Result<Handle, (Error, T)> {
        let index = match self.slots.iter().position(|s| s.object.is_none()) {
            Some(index) => index,
            None if self.slots.len() < MAX_HANDLES => {
                self.slots.push(Slot {
                    generation: 1,
                    object: None,
                });
                self.slots.len() - 1
            }
            None => return Err((Error::NoHandles, object)),
        };
        let slot = &mut self.slots[index];
        slot.object = Some(object);
        self.open += 1;
        Ok(Handle::new(index as u32, slot.generation))
    }

    fn slot(&mut self, handle: Handle) -> Result<&mut Slot<T>, Error> {
        if handle.generation() == 0 {
            return Err(Error::BadHandle);
        }
        let slot = self
            .slots
            .get_mut(handle.index() as usize)
            .ok_or(Error::BadHandle)?;
        match (&slot.object, slot.generation == handle.generation()) {
            (None, _) => Err(Error::BadHandle),
            (Some(_), false) => Err(Error::StaleHandle),
            (Some(_), true) => Ok(slot),
        }
    }

    /// The object `handle` names, if it is of kind `kind`.
    pub fn get(&mut self, handle: Handle, kind: HandleKind) -> Result<&mut T, Error> {
        let object = self.slot(handle)?.object.as_mut().ok_or(Error::BadHandle)?;
        if object.kind() != kind {
            return Err(Error::WrongType);
        }
        Ok(object)
    }

    /// The object `handle` names, whatever its kind.
    pub fn get_any(&mut self, handle: Handle) -> Result<&mut T, Error> {
        self.slot(handle)?.object.as_mut().ok_or(Error::BadHandle)
    }

    /// Takes the object out; the slot's next handle gets a new generation.
    pub fn remove(&mut self, handle: Handle) -> Result<T, Error> {
        let slot = self.slot(handle)?;
        let object = slot.object.take().ok_or(Error::BadHandle)?;
        // Generation 0 is never handed out: skip it on wrap-around.
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.open -= 1;
        Ok(object)
    }

    /// Handles open now.
    pub fn len(&self) -> usize {
        self.open
    }

    pub fn is_empty(&self) -> bool {
        self.open == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Thing(HandleKind);

    impl Object for Thing {
        fn kind(&self) -> HandleKind {
            self.0
        }
    }

    #[test]
    fn closed_stale_and_wrong_type_handles_are_errors() {
        let mut table = HandleTable::default();
        let a = table.insert(Thing(HandleKind::Channel)).unwrap();
        assert!(table.get(a, HandleKind::Channel).is_ok());
        assert_eq!(
            table.get(a, HandleKind::Timer).err(),
            Some(Error::WrongType)
        );
        assert_eq!(table.remove(a), Ok(Thing(HandleKind::Channel)));
        assert_eq!(
            table.get(a, HandleKind::Channel).err(),
            Some(Error::BadHandle)
        );
        assert_eq!(table.remove(a).err(), Some(Error::BadHandle));
        let b = table.insert(Thing(HandleKind::Timer)).unwrap();
        assert_eq!(b.index(), a.index(), "the slot is reused");
        assert_eq!(
            table.get(a, HandleKind::Channel).err(),
            Some(Error::StaleHandle)
        );
        assert!(table.get(b, HandleKind::Timer).is_ok());
        assert_eq!(
            table.get(Handle::NULL, HandleKind::Timer).err(),
            Some(Error::BadHandle)
        );
        assert_eq!(
            table.get(Handle::new(99, 1), HandleKind::Timer).err(),
            Some(Error::BadHandle)
        );
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = HandleTable::default();
        for _ in 0..MAX_HANDLES {
            table.insert(Thing(HandleKind::Timer)).unwrap();
        }
        let full = table.insert(Thing(HandleKind::Timer));
        assert_eq!(full.err().map(|(e, _)| e), Some(Error::NoHandles));
    }
}
